"""The Source stage: reads packets (demux, network or file I/O) into its stream's ring.

A source never decodes: the Decoder stage does, so a slow decoder never stalls the I/O.
It opens its input in ``probe()`` before any thread starts, so a missing or unreadable
input fails the pipeline's construction with a clear error, not a dead thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from pipeline.core.items import EndOfStream, Packet, StreamInfo
from pipeline.core.ring import RingBuffer
from pipeline.core.stage import Bus, Stage
from pipeline.core.stats import StreamStats

log = logging.getLogger("vidpipe.source")


class Source(Stage):
    kind = "source"
    per_stream = True
    live = False  # live sources default to drop-oldest rings
    manages_state = False  # sources with connections set connecting/streaming/... themselves

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"source:{stream_id}", Bus(), stream_id)
        self.out: RingBuffer | None = None
        self.stream_stats = StreamStats(stream_id)
        self._probed = False
        self._index = 0
        self._skip_to_keyframe = False

    def bind(self, bus: Bus, out: RingBuffer, stats: StreamStats) -> None:
        """Attach to a pipeline: its bus, this stream's packet ring and counters."""
        self.bus = bus
        self.out = out
        self.stream_stats = stats

    def describe(self) -> str:
        """What this source reads, safe to log (no credentials)."""
        return self.name

    def probe(self) -> None:
        """Open and check the input; raise SourceError naming the problem."""
        self._probed = True

    def packets(self) -> Iterator[Packet | StreamInfo]:
        raise NotImplementedError

    def next_index(self) -> int:
        i = self._index
        self._index += 1
        return i

    def make_packet(self, data, pts: float | None, keyframe: bool = True, gap: bool = False) -> Packet:
        return Packet(self.stream_id, self.next_index(), pts, time.time(), data, keyframe, gap)

    def run(self) -> None:
        assert self.out is not None, "source not bound to a pipeline"
        if not self._probed:
            self.probe()
        if not self.manages_state:
            self.stream_stats.set_state("streaming")
        reason = "eos"
        items = iter(self.packets())
        while True:
            t0 = time.perf_counter()
            item = next(items, None)  # reading / demuxing: the source's own work
            self.busy_s += time.perf_counter() - t0
            if item is None:
                break
            if self.stopping:
                reason = "stopped"
                break
            if isinstance(item, Packet):
                self.stream_stats.packets += 1
                self.items += 1
                if self.live:
                    self._put_live(item)
                    continue
            if not self.put(self.out, item):
                self.stream_stats.drop("packet_ring_full")
        if self.stream_stats.state != "failed":
            self.stream_stats.set_state("ended")
        self.put(self.out, EndOfStream(self.stream_id, reason))

    def _put_live(self, packet: Packet) -> None:
        """Overload on a live stream: when the decoder falls behind (its packet ring is
        full), drop packets up to the next keyframe, so no frame is decoded only to be
        thrown away and the decoder restarts cleanly on a keyframe."""
        if self._skip_to_keyframe:
            if not packet.keyframe:
                self.stream_stats.drop("gop_skip")
                return
            self._skip_to_keyframe = False
        if len(self.out) >= self.out.capacity or not self.put(self.out, packet):
            self._skip_to_keyframe = True
            self.stream_stats.drop("gop_skip")

    def on_failure(self, exc: BaseException) -> None:
        # End the stream downstream so the other stages finish it; the error is on the bus.
        self.stream_stats.set_state("failed")
        self.stream_stats.error = f"{type(exc).__name__}: {exc}"
        self.end_stream_downstream(self.out, exc)
