"""Where each decoded video frame sits in its source, and which frames never came out.

A frame's index is its position in the source, so a corrupt packet (or an undecodable
frame) is a gap that is counted, never a shift of every later index. How positions are
found depends on the stream (``StreamInfo.frame_positions``):

* ``pts`` (constant-rate files): ``round((pts - first_pts) × fps)``; positions stay
  absolute after a seek (``start_seconds``);
* ``order`` (variable-rate files): the presentation order of the packets fed to the codec
  (a decoder outputs frames in presentation order, and only once every packet with an
  earlier pts has been fed, B-frames included);
* ``count`` (live): frames numbered as they come.

In ``pts`` and ``order`` mode every packet fed is remembered by its pts until its frame
comes out; one that a later frame passes (or that is left at the end) never decoded and
is counted missing.

Example:
    >>> from fractions import Fraction
    >>> from pipeline.core.items import StreamInfo
    >>> p = FramePositions()
    >>> p.reset(StreamInfo("s", "h264", fps=10.0, time_base=Fraction(1, 10), frame_positions="pts"))
    >>> for raw in (0, 2, 1, 3):        # decode order, B-frame style; packet 1 is corrupt
    ...     p.fed(raw, raw / 10)
    >>> p.place(0, 0.0), p.place(2, 0.2), p.place(3, 0.3), p.finish()
    ((0, 0), (2, 1), (3, 0), 0)
    >>> p.read, p.end
    (4, 4)
"""

from __future__ import annotations

import heapq

from pipeline.core.items import StreamInfo

EPS = 1e-6


class FramePositions:
    """Numbers the frames of one stream across its sessions (loops, reconnects)."""

    def __init__(self) -> None:
        self.mode = "count"
        self._fps = 0.0
        self._first_pts = 0.0
        self._start: float | None = None
        self._pending: list[tuple[int, float | None]] = []  # (raw pts, pts in s) of packets fed, frame not out yet
        self._order_next = 0  # order mode: the position of the next packet in presentation order
        self.last: int | None = None  # the last position at or after the start
        self.first: int | None = None  # the first position at or after the start (seek)
        self.end = 0  # one past the last position seen at or after the start, missing ones included

    @property
    def read(self) -> int:
        """Positions from the first to the end: the frames the range read held."""
        return 0 if self.first is None else self.end - self.first

    def reset(self, info: StreamInfo) -> None:
        """A new session: its numbering; positions keep increasing across sessions."""
        self._pending.clear()
        self.mode = info.frame_positions if info.fps or info.frame_positions != "pts" else "order"
        self._fps, self._first_pts, self._start = info.fps or 0.0, info.first_pts, info.start_pts
        self._order_next = 0 if self.last is None else self.last + 1

    def fed(self, raw_pts: int | None, pts: float | None) -> None:
        """A packet went into the codec."""
        if self.mode != "count" and raw_pts is not None:
            heapq.heappush(self._pending, (raw_pts, pts))

    def _position(self, pts: float | None) -> int:
        if self.mode == "pts" and pts is not None:
            return round((pts - self._first_pts) * self._fps)
        if self.mode == "order":
            self._order_next += 1
            return self._order_next - 1
        return self._order_next if self.last is None else self.last + 1

    def _note(self, pts: float | None, position: int) -> bool:
        """Record a position; whether it is at or after the start (it counts)."""
        if self._start is not None and pts is not None and pts < self._start - EPS:
            return False
        if self.first is None:
            self.first = position
        self.end = max(self.end, position + 1)
        return True

    def place(self, raw_pts: int | None, pts: float | None) -> tuple[int, int]:
        """(index, missing) of a frame that came out: its position (never below the last
        one's + 1) and how many packets fed before it never became frames (decode errors).
        Positions its pts skips without a packet (frames a source skipped, a recording's
        own holes) are not counted here: whoever skipped them counts them."""
        missing = 0
        while raw_pts is not None and self._pending and self._pending[0][0] < raw_pts:
            _, lost_pts = heapq.heappop(self._pending)
            missing += self._note(lost_pts, self._position(lost_pts))
        if self._pending and self._pending[0][0] == raw_pts:
            heapq.heappop(self._pending)
        position = self._position(pts)
        if not self._note(pts, position):
            return position, 0  # before start_seconds: decoded only to reach it, never emitted
        if self.last is not None:
            position = max(position, self.last + 1)
        self.last = position
        self.end = max(self.end, position + 1)
        return position, missing

    def finish(self) -> int:
        """The session ended: packets whose frames never came out are missing."""
        missing = 0
        while self._pending:
            _, lost_pts = heapq.heappop(self._pending)
            position = self._position(lost_pts)
            if self._note(lost_pts, position):
                missing += 1
                self.last = position if self.last is None else max(self.last, position)
        return missing

    def expected_in_range(self, expected: int | None) -> int | None:
        """Of the ``expected`` frames the input holds, those from the first position read
        on; None when unknown (live, or order positions after a seek: not absolute)."""
        if not expected or self.mode == "count" or (self.mode == "order" and self._start is not None):
            return None
        return expected - (self.first or 0)

    def shortfall(self, expected: int | None) -> tuple[int, int] | None:
        """(read, expected) when the range read ended clearly short of the frames the input
        holds (container counts may be off by one); None when complete or unknown."""
        want = self.expected_in_range(expected)
        return (self.read, want) if want is not None and self.read < want - 1 else None
