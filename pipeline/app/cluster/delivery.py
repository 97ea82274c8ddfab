"""What has been delivered, per stream: the watermark that makes a failure invisible.

Results reach the control plane from the workers and are *delivered* there (to the
pipeline's sinks, its iterator, the HTTP buffer). The ledger admits each result at most
once: a stream's *watermark* is the index of its last delivered frame, and a result at
or below it is a duplicate. A worker that dies takes with it only results that were not
delivered; the stream's new worker starts after the watermark, so:

* a **file** stream resumes at ``watermark + 1`` (``resume_after``) and every frame has
  exactly one result across the failure (no gap: frames after the watermark are made again;
  no duplicate: the new worker starts after it, and the ledger drops any that slip by);
* a **live** stream cannot go back: it reconnects on its new worker, whose frame count
  starts at 0, so its indices are shifted to continue after the watermark (per-stream
  order is kept) and its first result there is marked ``gap``.

Only the worker a stream is assigned to is heard: results or ends from a worker the
control plane gave up on (a heartbeat timeout, then it answered after all) are dropped.

Example:
    >>> from pipeline.vision.detections import Detections
    >>> def r(i): return Result("f", i, None, 0.0, 8, 8, "m", Detections.empty((8, 8)))
    >>> ledger = Ledger()
    >>> _ = ledger.open("f", {"id": "f"}, live=False, worker="w1")
    >>> [ledger.admit("w1", r(i)) is not None for i in (0, 1, 1, 2)]
    [True, True, False, True]
    >>> ledger.move("f", "w2")          # w1 died: resume after frame 2
    2
    >>> ledger.admit("w1", r(3)) is None, ledger.admit("w2", r(3)).frame_index
    (True, 3)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pipeline.app.observability import LatencyWindow
from pipeline.app.rates import RateMeter
from pipeline.vision.result import Result

LATENCY_KEPT = 500  # results per stream the latency percentiles are taken over


@dataclass
class StreamLedger:
    """One stream as the control plane knows it."""

    stream_id: str
    config: dict[str, Any]  # its ``streams:`` entry, as given (what a new worker is sent)
    live: bool
    worker: str | None  # the worker it is assigned to (None: waiting for one)
    watermark: int = -1  # the last delivered frame's index
    offset: int = 0  # live: added to the worker's indices (its count restarted on a new worker)
    gap_next: bool = False  # live: the next delivered result follows a move
    moves: int = 0
    delivered: int = 0
    duplicates: int = 0  # results dropped at or below the watermark
    ended: str | None = None  # the end's reason, once delivered
    removing: bool = False  # the control plane asked for its removal
    paused: bool = False
    history: list[str] = field(default_factory=list)  # the workers it ran on


END_STATES = {"eos": "ended", "error": "failed", "removed": "removed", "stopped": "stopped"}


def _state(entry: StreamLedger) -> str:
    """As ``vidpipe serve`` names a stream's state; ``waiting``: for a worker after a loss."""
    if entry.ended:
        return END_STATES.get(entry.ended, "ended")
    return "paused" if entry.paused else "streaming" if entry.worker else "waiting"


class Ledger:
    """Every stream's delivery state (see the module docstring); thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.streams: dict[str, StreamLedger] = {}
        self.rates = RateMeter()
        self.latency: dict[str, LatencyWindow] = {}  # per stream: capture to the worker's result, ms
        self.stale = 0  # items from a worker that no longer holds the stream

    def open(self, stream_id: str, config: dict[str, Any], live: bool, worker: str | None) -> StreamLedger:
        with self.lock:
            entry = self.streams[stream_id] = StreamLedger(stream_id, config, live, worker,
                                                            history=[worker] if worker else [])
            return entry

    def forget(self, stream_id: str) -> StreamLedger | None:
        with self.lock:
            self.rates.forget(stream_id)
            self.latency.pop(stream_id, None)
            return self.streams.pop(stream_id, None)

    def admit(self, worker: str, result: Result) -> Result | None:
        """The result to deliver (its index shifted for a moved live stream, ``gap`` set on
        the first after a move), or None: a duplicate, an ended stream, a stale worker. The
        watermark moves here: deliver what this returns before admitting the next."""
        with self.lock:
            entry = self.streams.get(result.stream_id)
            if entry is None or entry.ended is not None or entry.worker != worker:
                self.stale += 1
                return None
            index = result.frame_index + entry.offset
            if index <= entry.watermark:
                entry.duplicates += 1
                return None
            result.frame_index = index
            if entry.gap_next:
                result.gap, entry.gap_next = True, False
            entry.watermark = index
            entry.delivered += 1
            self.rates.tick(result.stream_id)
            window = self.latency.get(result.stream_id)
            if window is None:
                window = self.latency[result.stream_id] = LatencyWindow(LATENCY_KEPT)
            window.add(result.latency_ms)
            return result

    def end(self, worker: str, stream_id: str, reason: str) -> bool:
        """Whether a worker's end of a stream is its end (to deliver): eos or error, or the
        removal the control plane asked for; not one from a stale worker."""
        with self.lock:
            entry = self.streams.get(stream_id)
            if entry is None or entry.ended is not None or entry.worker != worker:
                return False
            if reason in ("eos", "error") or entry.removing:
                entry.ended = reason
                self.rates.forget(stream_id)
                return True
            return False

    def move(self, stream_id: str, worker: str | None) -> int:
        """The stream goes to ``worker`` (None: none yet). Returns where it resumes: a file's
        last delivered frame (the new worker starts after it); -1 for a live stream (its
        indices will continue after the watermark, the first marked as a gap)."""
        with self.lock:
            entry = self.streams[stream_id]
            if entry.worker is not None:
                entry.moves += 1
            entry.worker = worker
            if worker is not None:
                entry.history.append(worker)
            if entry.live:
                entry.offset, entry.gap_next = entry.watermark + 1, entry.watermark >= 0
                return -1
            return entry.watermark

    def _latency(self, stream_id: str) -> dict[str, float]:
        window = self.latency.get(stream_id)
        return window.percentiles() if window is not None else {}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per stream: worker, watermark, delivered, duplicates, moves, fps, state, latency
        percentiles (capture to result on its worker)."""
        with self.lock:
            return {sid: {"worker": e.worker, "live": e.live, "last_frame": e.watermark, "delivered": e.delivered,
                          "duplicates_dropped": e.duplicates, "moves": e.moves, "fps": self.rates.fps(sid),
                          "state": _state(e), "latency_ms": self._latency(sid)}
                    for sid, e in self.streams.items()}
