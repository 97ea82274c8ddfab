"""What a source is: an object that opens its input and yields packets.

A source never decodes (the Decoder stage does, so a slow decoder never stalls the I/O)
and is not a thread: a :class:`~sources.stage.SourceStage` runs it. It opens its input in
``open()`` before any thread starts, so a missing or unreadable input fails the
pipeline's construction with a clear error, not a dead thread.

Example:
    >>> import numpy as np
    >>> from pipeline.core.items import StreamInfo
    >>> class Blank(Source):
    ...     def packets(self):
    ...         yield StreamInfo(self.stream_id, None, 64, 48, 30.0)
    ...         for i in range(3):
    ...             yield self.make_packet(np.zeros((48, 64, 3), np.uint8), i / 30)
    >>> [getattr(p, "index", "info") for p in Blank("cam").packets()]
    ['info', 0, 1, 2]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from pipeline.core.items import Discontinuity, Packet, StreamInfo
from pipeline.core.stats import StreamStats

SourceItem = Packet | StreamInfo | Discontinuity


class Source:
    """Base of every source. Subclasses implement ``packets()`` (and ``open``/``close``)."""

    live = False  # live sources default to drop-oldest rings and skip whole GOPs when behind
    reports_state = False  # sources with connections report connecting/streaming/... themselves

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.stats = StreamStats(stream_id)  # the pipeline's counters once attached
        self._stop = threading.Event()  # set when the source must stop (waits end early)
        self._index = 0
        self.opened = False

    def attach(self, stats: StreamStats, stop: threading.Event) -> None:
        """Report into ``stats`` and stop when ``stop`` is set (the stage running it owns both)."""
        self.stats, self._stop = stats, stop

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def describe(self) -> str:
        """What this source reads, safe to log (no credentials)."""
        return f"source {self.stream_id}"

    def open(self) -> None:
        """Open and check the input; raise SourceError naming the problem."""
        self.opened = True

    def packets(self) -> Iterator[SourceItem]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the input; called once when the stage running the source ends."""

    def expected_frames(self) -> int | None:
        """Frames the input holds, where it says (files, folders); None for live inputs."""
        return None

    def make_packet(self, data: Any, pts: float | None, keyframe: bool = True, gap: bool = False,
                    index: int | None = None, source_path: str | None = None) -> Packet:
        """The next packet of this stream: indices count up from 0, or from ``index`` (a
        position in the source, for sources that skip one they could not read)."""
        index = self._index if index is None else index
        packet = Packet(self.stream_id, index, pts, time.time(), data, keyframe, gap, source_path)
        self._index = index + 1
        return packet
