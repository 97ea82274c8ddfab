"""Which streams each shared stage still expects, and whether more may join.

A stage shared by every stream (the batcher, the tracker, each sink, the pipeline's
iterator) runs until it has seen the end of every stream it was told of. Streams may join
while it runs (``Pipeline.add_stream``): the roster adds a stream to every consumer at
once, under one lock, so no consumer can decide it is finished while a stream joins.
A consumer is *done* when it expects nothing more and nothing more may come: the roster
is not ``keep_alive`` (then the first consumer that is done closes it), or it was closed.

Example:
    >>> roster = Roster(["cam0"])
    >>> roster.join("batcher"); roster.join("sink")
    >>> gone = roster.add("cam1")
    >>> roster.end("batcher", "cam1"); gone.is_set()
    False
    >>> roster.end("sink", "cam1"); gone.is_set()
    True
    >>> roster.end("batcher", "cam0"); roster.done("batcher")
    True
    >>> roster.add("cam2")
    Traceback (most recent call last):
    ...
    pipeline.core.roster.RosterClosed: no more streams may join
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable


class RosterClosed(Exception):
    """A stream tried to join after the roster closed (the pipeline is finishing)."""


class Roster:
    """The streams of a pipeline as its shared stages see them (see the module docstring)."""

    def __init__(self, streams: Iterable[str] = (), keep_alive: bool = False) -> None:
        self._lock = threading.Lock()
        self._streams = list(streams)  # every stream not yet ended at every consumer
        self._open: dict[Hashable, set[str]] = {}  # consumer -> the streams it still expects
        self._gone: dict[str, threading.Event] = {sid: threading.Event() for sid in self._streams}
        self.keep_alive = keep_alive
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def join(self, consumer: Hashable) -> None:
        """A consumer that expects the end of every stream now on the roster (and of every
        stream that joins later)."""
        with self._lock:
            self._open[consumer] = set(self._streams)

    def add(self, stream_id: str) -> threading.Event:
        """Add a stream to every consumer; returns an event set once its end has passed
        them all. Raises RosterClosed once closed, ValueError if it is already on."""
        with self._lock:
            if self._closed:
                raise RosterClosed("no more streams may join")
            if stream_id in self._gone:
                raise ValueError(f"stream {stream_id!r} is already on the roster")
            for expected in self._open.values():
                expected.add(stream_id)
            self._streams.append(stream_id)
            gone = self._gone[stream_id] = threading.Event()
            self._settle(stream_id)  # no consumer yet: gone at once
            return gone

    def gone(self, stream_id: str) -> threading.Event | None:
        """The event ``add`` returned (None once the stream left the roster)."""
        with self._lock:
            return self._gone.get(stream_id)

    def end(self, consumer: Hashable, stream_id: str) -> None:
        """``consumer`` has seen the end of ``stream_id``."""
        with self._lock:
            self._open[consumer].discard(stream_id)
            self._settle(stream_id)

    def discard(self, stream_id: str) -> None:
        """Take a stream off every consumer at once (one that never started)."""
        with self._lock:
            for expected in self._open.values():
                expected.discard(stream_id)
            self._settle(stream_id)

    def _settle(self, stream_id: str) -> None:
        if any(stream_id in expected for expected in self._open.values()):
            return
        if stream_id in self._streams:
            self._streams.remove(stream_id)
        gone = self._gone.pop(stream_id, None)
        if gone is not None:
            gone.set()

    def expects(self, consumer: Hashable) -> set[str]:
        with self._lock:
            return set(self._open[consumer])

    def done(self, consumer: Hashable) -> bool:
        """True when ``consumer`` expects no stream and none may join: without keep_alive
        this closes the roster (the first consumer to finish decides for all)."""
        with self._lock:
            if self._open[consumer] or (self.keep_alive and not self._closed):
                return False
            self._closed = True
            return True

    def close(self) -> None:
        """No more streams may join; consumers finish once their streams have ended."""
        with self._lock:
            self._closed = True
