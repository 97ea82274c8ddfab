"""Bounded ring buffers that connect the stages, with three back-pressure policies.

- ``block``: the producer waits for space. Lossless; the default for files and folders.
- ``drop_oldest``: the newest item replaces the oldest. Lowest latency; live sources.
- ``drop_newest``: the incoming item is discarded.

Control items (end of stream, stream info, discontinuities) are never dropped, never evict
and never wait: the capacity bounds the data items (packets, frames, results) only, so a
live stream's last frame is not thrown away for its end, and a frame is not held back
behind a stream's info. Control items are few (a stream's start, reconnects and end).

Every blocking call takes a timeout so a stage can notice a stop request, and ``close()``
wakes every waiter.

Example:
    >>> ring = RingBuffer(2, policy="drop_oldest", name="frames")
    >>> for i in range(3):
    ...     ring.put(i)
    True
    True
    True
    >>> ring.get(), ring.get(), ring.stats.dropped
    (1, 2, 1)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar, get_args

T = TypeVar("T")
RingPolicy = Literal["block", "drop_oldest", "drop_newest"]
POLICIES: tuple[str, ...] = get_args(RingPolicy)


class RingClosed(Exception):
    """The ring was closed: nothing more will come (get) or be accepted (put)."""


class RingEmpty(Exception):
    """``get`` timed out with nothing to return."""


@dataclass
class RingStats:
    puts: int = 0
    gets: int = 0
    dropped: int = 0
    max_depth: int = 0


def is_control(item: object) -> bool:
    return getattr(item, "is_control", False)


class RingBuffer(Generic[T]):
    """A fixed-capacity FIFO shared by one or more producers and consumers."""

    def __init__(
        self,
        capacity: int,
        policy: RingPolicy = "block",
        name: str = "ring",
        on_drop: Callable[[T], None] | None = None,
        waker: threading.Event | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"ring {name!r}: capacity must be >= 1, got {capacity}")
        if policy not in POLICIES:
            raise ValueError(f"ring {name!r}: policy must be one of {POLICIES}, got {policy!r}")
        self.capacity = capacity
        self.policy = policy
        self.name = name
        self.stats = RingStats()
        self._items: deque[T] = deque()
        self._controls = 0  # control items in _items: outside the capacity
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        self._on_drop = on_drop
        self._waker = waker  # set on every put: lets one consumer watch many rings

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        """As many data items as the capacity (control items aside)."""
        return len(self._items) - self._controls >= self.capacity

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Add ``item``. Returns False if a ``block`` ring stayed full for ``timeout`` s
        (or the item was discarded by ``drop_newest``); raises RingClosed once closed."""
        dropped: T | None = None
        has_dropped = False
        with self._lock:
            if self._closed:
                raise RingClosed(self.name)
            control = is_control(item)
            if not control and self.full:
                if self.policy == "drop_newest":
                    self.stats.dropped += 1
                    dropped, has_dropped = item, True
                elif self.policy == "drop_oldest" and (victim := self._evict_oldest_droppable()) is not None:
                    dropped, has_dropped = victim, True
                else:
                    if not self._wait_for_space(timeout):
                        return False
            if not has_dropped or dropped is not item:
                self._items.append(item)
                self._controls += control
                self.stats.puts += 1
                self.stats.max_depth = max(self.stats.max_depth, len(self._items))
                self._not_empty.notify()
        if has_dropped and self._on_drop is not None:
            self._on_drop(dropped)  # type: ignore[arg-type]  # has_dropped: dropped is a T
            # (outside the lock: callbacks may take their own locks)
        if self._waker is not None:
            self._waker.set()
        return not (has_dropped and dropped is item)

    def _evict_oldest_droppable(self) -> T | None:
        for i, old in enumerate(self._items):
            if not is_control(old):
                del self._items[i]
                self.stats.dropped += 1
                return old
        return None

    def _wait_for_space(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.full:
            if self._closed:
                raise RingClosed(self.name)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._not_full.wait(remaining)
        if self._closed:
            raise RingClosed(self.name)
        return True

    def get(self, timeout: float | None = None) -> T:
        """Next item; raises RingEmpty after ``timeout`` s, RingClosed once closed and empty."""
        with self._lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items:
                if self._closed:
                    raise RingClosed(self.name)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise RingEmpty(self.name)
                self._not_empty.wait(remaining)
            return self._pop()

    def get_nowait(self) -> T | None:
        """Next item or None; raises RingClosed once closed and empty."""
        with self._lock:
            if not self._items:
                if self._closed:
                    raise RingClosed(self.name)
                return None
            return self._pop()

    def _pop(self) -> T:
        item = self._items.popleft()
        self._controls -= is_control(item)
        self.stats.gets += 1
        self._not_full.notify()
        return item

    def close(self) -> None:
        """No more puts; getters drain what is left, then see RingClosed. Wakes all waiters."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
        if self._waker is not None:
            self._waker.set()
