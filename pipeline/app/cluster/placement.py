"""Where a stream goes: the worker with the most headroom, and when to add or drain one.

A worker's *capacity* is how many streams it takes (``ClusterConfig.streams_per_worker``);
its headroom is capacity minus the streams placed on it. Ties go to the worker that has
been up longest (its model is warm, its batches fuller). A stream that fits nowhere asks
for a new worker; only when the cluster cannot give one is a worker overloaded (the least
loaded, with a warning), since a stream that runs late beats one that does not run.

Example:
    >>> p = Placement(capacity=2)
    >>> p.add_worker("w1"); p.add_worker("w2")
    >>> [p.place(s) for s in ("a", "b", "c")]
    ['w1', 'w2', 'w1']
    >>> p.place("d"), p.place("e")
    ('w2', None)
    >>> p.least_loaded()
    'w1'
    >>> sorted(p.remove_worker("w1"))
    ['a', 'c']
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WorkerLoad:
    """The streams placed on one worker, in placement order."""

    worker_id: str
    capacity: int
    streams: list[str] = field(default_factory=list)
    order: int = 0  # when it joined: ties go to the oldest

    @property
    def headroom(self) -> int:
        return self.capacity - len(self.streams)


class Placement:
    """Streams by worker (see the module docstring); not thread-safe (its owner's lock)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a worker's capacity must be at least 1 stream, got {capacity}")
        self.capacity = capacity
        self.workers: dict[str, WorkerLoad] = {}
        self.where: dict[str, str] = {}  # stream -> worker
        self._joined = 0

    def add_worker(self, worker_id: str, capacity: int | None = None) -> None:
        self._joined += 1
        self.workers[worker_id] = WorkerLoad(worker_id, capacity or self.capacity, order=self._joined)

    def remove_worker(self, worker_id: str) -> list[str]:
        """Forget a worker; the streams that were on it (to place again)."""
        load = self.workers.pop(worker_id, None)
        if load is None:
            return []
        for sid in load.streams:
            self.where.pop(sid, None)
        return list(load.streams)

    def best(self) -> str | None:
        """The worker with the most headroom (ties: the oldest); None if none has any."""
        fits = [w for w in self.workers.values() if w.headroom > 0]
        return min(fits, key=lambda w: (-w.headroom, w.order)).worker_id if fits else None

    def least_loaded(self) -> str | None:
        """The worker with the fewest streams, full or not (ties: the oldest)."""
        if not self.workers:
            return None
        return min(self.workers.values(), key=lambda w: (len(w.streams), w.order)).worker_id

    def place(self, stream_id: str) -> str | None:
        """Put the stream on the best worker; None when every worker is full."""
        worker_id = self.best()
        if worker_id is not None:
            self.assign(stream_id, worker_id)
        return worker_id

    def assign(self, stream_id: str, worker_id: str) -> None:
        """Put the stream on this worker (over its capacity if need be)."""
        self.unassign(stream_id)
        self.workers[worker_id].streams.append(stream_id)
        self.where[stream_id] = worker_id

    def unassign(self, stream_id: str) -> str | None:
        """Take the stream off its worker; which one it was on."""
        worker_id = self.where.pop(stream_id, None)
        if worker_id is not None and worker_id in self.workers:
            self.workers[worker_id].streams.remove(stream_id)
        return worker_id

    def idle(self) -> list[str]:
        """Workers with no stream, newest first (the ones to drain first)."""
        return [w.worker_id for w in sorted(self.workers.values(), key=lambda w: -w.order) if not w.streams]

    def snapshot(self) -> dict[str, list[str]]:
        """Each worker's streams."""
        return {wid: list(w.streams) for wid, w in self.workers.items()}
