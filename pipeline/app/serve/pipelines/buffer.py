"""The newest records of one pipeline, numbered: read by polling (``after=SEQ``) or awaited.

Each record gets ``seq`` (1, 2, ...). A reader asks for what follows the last seq it saw;
when it fell behind by more than the buffer holds it gets what is left and a count of the
records it missed (``dropped``). End events (a stream that ended or was removed) travel
in the same sequence as results, after the stream's last result.

Example:
    >>> b = ResultBuffer(2)
    >>> for i in range(3):
    ...     _ = b.push({"frame": i})
    >>> b.read(0)
    ([{'frame': 1, 'seq': 2}, {'frame': 2, 'seq': 3}], 3, 1)
    >>> b.read(3)
    ([], 3, 0)
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

END_SCHEMA = "vidpipe.end/1"  # a stream's end in the record sequence (not a result: readers tell them by schema)


def end_record(stream_id: str, reason: str, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of a stream's end: ``reason`` eos, stopped, error or removed."""
    rec: dict[str, Any] = {"schema": END_SCHEMA, "stream": stream_id, "event": "end", "reason": reason}
    if summary is not None:
        rec["summary"] = summary
    return rec


class ResultBuffer:
    """A bounded, numbered record buffer, written by one thread and read by any (threads or
    the event loop's coroutines)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self.seq = 0  # the last record's number
        self.closed = False
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def push(self, record: dict[str, Any]) -> int:
        """Append a record (it gets ``seq``); the oldest is dropped when full."""
        with self._cond:
            self.seq += 1
            self._items.append({**record, "seq": self.seq})
            self._wake()
            return self.seq

    def close(self) -> None:
        """No more records (the pipeline ended, or the server stops): waiters return."""
        with self._cond:
            self.closed = True
            self._wake()

    def _wake(self) -> None:
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)

    def read(self, after: int, limit: int | None = None) -> tuple[list[dict[str, Any]], int, int]:
        """Records with seq > ``after`` (at most ``limit``), the seq to ask after next, and
        how many the reader missed because they were dropped before it read them."""
        with self._cond:
            first = self._items[0]["seq"] if self._items else self.seq + 1
            dropped = max(0, first - after - 1) if after < self.seq else 0
            start = max(0, after - first + 1)
            items = list(self._items)[start:] if start < len(self._items) else []
        if limit is not None:
            items = items[:limit]
        nxt = items[-1]["seq"] if items else max(after, first - 1)
        return items, nxt, dropped

    def wait(self, after: int, timeout: float) -> bool:
        """Block until a record after ``after`` exists or the buffer closes; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.seq > after or self.closed, timeout)

    async def wait_async(self, after: int) -> None:
        """Await a record after ``after`` or the close (on the event loop; never blocks it)."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self.seq > after or self.closed:
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        await fut


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
