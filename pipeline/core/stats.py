"""Per-stream counters shared by the stages of a stream: packets, frames, results, drops
by reason, and the stream's state. Cheap enough to update on every frame."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

END_STATES = ("ended", "stopped", "failed", "removed")  # a stream in one of these sends nothing more


@dataclass
class StreamStats:
    stream_id: str
    packets: int = 0
    frames: int = 0
    results: int = 0
    detections: int = 0
    state: str = "created"  # created | connecting | streaming | reconnecting | ended | stopped | failed | removed
    paused: bool = False  # pause_stream: reported as the state "paused" while it has not ended
    reconnects: int = 0
    error: str | None = None
    decoder: str | None = None  # what decodes the stream, e.g. "h264 (software)", "hevc (cuda)"
    drops: Counter[str] = field(default_factory=Counter)
    frames_expected: int | None = None  # frames the input held in the range read (files)
    truncated: bool = False  # the input ended clearly short of frames_expected
    problems: list[str] = field(default_factory=list)  # one line each: what left the stream incomplete
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.drops[reason] += n

    def drops_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.drops)

    def set_state(self, state: str) -> None:
        self.state = state

    @property
    def shown_state(self) -> str:
        """The state as reported: ``paused`` while paused and not ended."""
        return "paused" if self.paused and self.state not in END_STATES else self.state

    def summary(self) -> dict[str, Any]:
        out = {
            "state": self.shown_state,
            "packets": self.packets,
            "frames": self.frames,
            "results": self.results,
            "detections": self.detections,
            "drops": self.drops_snapshot(),
        }
        if self.frames_expected is not None:
            out["frames_expected"] = self.frames_expected
            out["truncated"] = self.truncated
        if self.decoder:
            out["decoder"] = self.decoder
        if self.reconnects:
            out["reconnects"] = self.reconnects
        if self.error:
            out["error"] = self.error
        return out
