"""Results per second of each stream over its last results (the status lines of ``vidpipe
serve``'s pipelines and of cluster mode's control plane).

Example:
    >>> m = RateMeter()
    >>> m.fps("cam")
    0.0
"""

from __future__ import annotations

import time
from collections import deque

RATE_WINDOW = 30  # results per stream the fps is measured over
STALE_S = 2.0  # no result for this long: the stream's fps reads 0 (paused, stalled)


class RateMeter:
    """Results per second of each stream over its last ``RATE_WINDOW`` results."""

    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = {}

    def tick(self, stream_id: str) -> None:
        times = self._times.get(stream_id)
        if times is None:
            times = self._times[stream_id] = deque(maxlen=RATE_WINDOW)
        times.append(time.monotonic())

    def fps(self, stream_id: str) -> float:
        times = self._times.get(stream_id)
        if not times or len(times) < 2 or time.monotonic() - times[-1] > STALE_S:
            return 0.0
        return round((len(times) - 1) / max(1e-9, times[-1] - times[0]), 2)

    def forget(self, stream_id: str) -> None:
        self._times.pop(stream_id, None)
