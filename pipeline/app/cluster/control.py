"""The control plane: streams placed on worker actors, results delivered once, failures healed.

One process (the driver of ``vidpipe run --cluster`` or ``vidpipe serve --cluster``)
holds :class:`ClusterControl`. It starts workers (:mod:`pipeline.app.cluster.workers`),
places each stream on the one with the most headroom (:mod:`pipeline.app.cluster.placement`)
and starts another when none has room and the cluster has the resources. Its poll thread
keeps one ``take`` in flight per worker and hands every result to the ledger
(:mod:`pipeline.app.cluster.delivery`), then to ``on_result``: that is delivery, and the
stream's watermark.

A worker is *lost* when a call to it raises Ray's actor errors (its process or node died)
or it has not answered for ``heartbeat_timeout_s``: it is killed for good, and its streams
are placed again, files resuming after their watermark, live streams reconnecting with the
gap marked. A stream that cannot be placed now (no worker, no room) waits and is tried
again every ``RETRY_S``. Workers without streams for ``idle_drain_s`` beyond
``min_workers`` are stopped.

Operations (add, remove, the moves of a loss, draining) run one at a time (``ops``). The
moves of a loss, the retries and the draining run on the maintenance thread
(``vidpipe:cluster-heal``), so the poll thread goes on delivering the survivors' results
while a new worker loads its model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline.app.cluster.delivery import Ledger
from pipeline.app.cluster.placement import Placement
from pipeline.app.cluster.poller import Poller
from pipeline.app.cluster.status import publish, snapshot, status_key, withdraw
from pipeline.app.cluster.workers import CALL_TIMEOUT_S, WorkerHandle, call, check_feasible, has_room, kill, start_worker, stop_worker
from pipeline.app.cluster_options import ClusterConfig
from pipeline.app.config import load_stream_config
from pipeline.core.errors import ClusterError, StreamExistsError, UnknownStreamError, VidpipeError
from pipeline.vision.result import Result

log = logging.getLogger("vidpipe.cluster")

RETRY_S = 2.0  # streams waiting for a worker are tried again this often
EVENTS_KEPT = 50
PUBLISH_S = 1.0  # the status in the cluster's key-value store (vidpipe cluster status)

ResultHook = Callable[[Result], None]
EndHook = Callable[[str, str, str | None], None]  # stream id, reason, error


class ClusterControl:
    """See the module docstring. ``ray``: the connected module (:func:`connect`)."""

    def __init__(self, ray: Any, worker_config: dict[str, Any], cluster: ClusterConfig, on_result: ResultHook,
                 on_end: EndHook, keep_images: bool = False, name: str = "vidpipe") -> None:
        self.ray, self.worker_config, self.cluster = ray, worker_config, cluster
        self.on_result, self.on_end, self.keep_images = on_result, on_end, keep_images
        self.placement = Placement(cluster.streams_per_worker)
        self.ledger = Ledger()
        self.workers: dict[str, WorkerHandle] = {}
        self.lock = threading.RLock()  # workers and placement (short holds)
        self.ops = threading.RLock()  # one operation at a time
        self.events: list[str] = []  # losses and moves, newest last (status)
        self.ends: dict[str, threading.Event] = {}
        self.paused: set[str] = set()
        self.unplaced: set[str] = set()
        self._next_publish = 0.0
        self._heal = threading.Event()  # wakes the maintenance thread (a loss)
        self._closing = threading.Event()
        self.maintenance = threading.Thread(target=self._maintain, name="vidpipe:cluster-heal", daemon=True)
        self.status_key = status_key(name)  # where `vidpipe cluster status` reads it
        self.poller = Poller(self)

    # -- lifetime -------------------------------------------------------------------------
    def start(self) -> None:
        """Check the cluster can hold a worker, start ``min_workers``, start polling."""
        check_feasible(self.ray, self.cluster)
        try:
            with self.ops:
                for _ in range(self.cluster.min_workers):
                    self._grow(required=True)
        except BaseException:
            self.close()  # the workers that did start
            raise
        self.poller.start()
        self.maintenance.start()

    def close(self) -> None:
        """Stop polling and every worker (their streams end ``stopped``, not delivered)."""
        self._closing.set()
        self._heal.set()
        if self.maintenance.is_alive():
            self.maintenance.join(CALL_TIMEOUT_S)
        self.poller.stop(CALL_TIMEOUT_S)
        with self.lock:
            handles, self.workers = list(self.workers.values()), {}
        for h in handles:
            stop_worker(self.ray, h)
        withdraw(self.status_key)

    def _grow(self, required: bool = False) -> WorkerHandle | None:
        """Start one more worker if the cluster has room (and max_workers allows); with
        ``required`` a ClusterError says why not."""
        limit = self.cluster.max_workers
        if limit is not None and len(self.workers) >= limit:
            if required:
                raise ClusterError(f"max_workers {limit} reached")
            return None
        if not has_room(self.ray, self.cluster) and not required:
            return None
        handle = start_worker(self.ray, self.cluster, self.worker_config, self.keep_images)
        with self.lock:
            self.workers[handle.worker_id] = handle
            self.placement.add_worker(handle.worker_id)
            handle.idle_since = time.monotonic()
        self._event(f"worker {handle.worker_id} started on node {handle.node[:12]}")
        return handle

    # -- streams --------------------------------------------------------------------------
    def add_stream(self, config: dict[str, Any]) -> str:
        """Place a stream (a ``streams:`` entry) on the worker with most headroom; its id.
        Raises ConfigError, StreamExistsError, SourceError (from the worker), ClusterError."""
        cfg = load_stream_config(config)
        sid = cfg.id
        live = cfg.source.type != "file" or bool(getattr(cfg.source, "loop", False))
        with self.ops:
            old = self.ledger.streams.get(sid)
            if old is not None and old.ended is None:
                raise StreamExistsError(f"cannot add stream {sid!r}: the cluster pipeline has a stream of that id")
            self.ledger.forget(sid)
            self.ledger.open(sid, cfg.model_dump(mode="json"), live, None)
            self.ends[sid] = threading.Event()
            try:
                self._place(sid)
            except BaseException:
                self.ledger.forget(sid)
                self.ends.pop(sid, None)
                raise
        return sid

    def _place(self, sid: str) -> str:
        """Put the stream on a worker (the best, a new one, or the least loaded) and add it
        there, resuming after its watermark; the worker's id."""
        with self.lock:
            wid = self.placement.place(sid)
        if wid is None:
            handle = self._grow(required=not self.workers)
            with self.lock:
                wid = handle.worker_id if handle else self.placement.least_loaded()
                if wid is None:
                    raise ClusterError(f"stream {sid!r}: no worker to place it on")
                if handle is None:
                    log.warning("stream %s: every worker is full and the cluster has no room for another: "
                                "worker %s takes it over its capacity", sid, wid)
                self.placement.assign(sid, wid)
        with self.lock:
            handle = self.workers[wid]
            handle.idle_since = None
        entry = self.ledger.streams[sid]
        resume = self.ledger.move(sid, wid)
        try:
            self._call(handle, "add", entry.config, resume if resume >= 0 else None, entry.offset if entry.live else 0)
            if sid in self.paused:
                self._call(handle, "pause", sid, True)
        except BaseException:
            with self.lock:
                self.placement.unassign(sid)
            self.ledger.move(sid, None)
            raise
        self.unplaced.discard(sid)
        if entry.moves:
            self._event(f"stream {sid} moved to {wid}" + (f", resuming after frame {resume}" if resume >= 0 else
                                                          ", reconnecting (gap marked)"))
        return wid

    def _call(self, handle: WorkerHandle, method: str, *args: Any) -> Any:  # a worker lost meanwhile is healed
        return call(self.ray, handle, method, *args, on_lost=self.lose)

    def remove_stream(self, sid: str, drain: bool = True, timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        """Remove a stream; once its end has been delivered, its line of the ledger."""
        with self.ops:
            entry = self.ledger.streams.get(sid)
            if entry is None:
                have = ", ".join(repr(s) for s in self.ledger.streams) or "none"
                raise UnknownStreamError(f"cannot remove stream {sid!r}: the cluster pipeline has no such stream "
                                         f"(streams: {have})")
            entry.removing = True
            handle = self.workers.get(entry.worker or "")
            if entry.ended is None and handle is not None:
                self._call(handle, "remove", sid, drain)
            elif entry.ended is None:  # waiting for a worker: nothing runs it
                entry.ended = "removed"
                self.unplaced.discard(sid)
                self.on_end(sid, "removed", None)
                self.ends[sid].set()
        if not self.ends[sid].wait(timeout_s):
            raise ClusterError(f"stream {sid!r}: its end was not delivered within {timeout_s:g} s")
        self.release(sid)
        self.paused.discard(sid)
        return self.ledger.snapshot().get(sid, {})  # its line stays (state removed) until the id is added again

    def pause(self, sid: str | None, paused: bool) -> None:
        """Pause or resume one stream, or every stream (None); carried over when it moves."""
        with self.ops:
            targets = list(self.ledger.streams) if sid is None else [sid]
            if sid is not None and sid not in self.ledger.streams:
                raise UnknownStreamError(f"no stream {sid!r} in the cluster pipeline")
            for s in targets:
                (self.paused.add if paused else self.paused.discard)(s)
                self.ledger.streams[s].paused = paused
                handle = self.workers.get(self.ledger.streams[s].worker or "")
                if handle is not None and self.ledger.streams[s].ended is None:
                    self._call(handle, "pause", s, paused)

    def release(self, sid: str) -> None:
        """The stream has ended: off its worker's slot (and off the worker: fire and forget)."""
        with self.lock:
            wid = self.placement.unassign(sid)
            handle = self.workers.get(wid or "")
            if handle is not None and not self.placement.workers[handle.worker_id].streams:
                handle.idle_since = time.monotonic()
        if handle is not None:
            handle.actor.forget.remote(sid)

    # -- losses (from the poller or a call), maintenance ------------------------------------
    def lose(self, handle: WorkerHandle, why: str) -> None:
        """Give the worker up (kill it for good) and place its streams again."""
        with self.ops:
            with self.lock:
                if handle.lost is not None:
                    return
                handle.lost = why
                self.workers.pop(handle.worker_id, None)
                streams = self.placement.remove_worker(handle.worker_id)
            kill(self.ray, handle.actor)
            self._event(f"worker {handle.worker_id} on node {handle.node[:12]} lost: {why}; "
                        f"moving {len(streams)} stream(s)")
            for sid in streams:
                entry = self.ledger.streams.get(sid)
                if entry is None or entry.ended is not None:
                    continue
                self.ledger.move(sid, None)
                self.unplaced.add(sid)
        self._heal.set()  # placed by the maintenance thread: the poll thread goes on delivering

    def _place_waiting(self) -> None:
        """Place the streams that wait; one its new worker refuses (its file is gone) ends
        ``error``; a cluster without room is retried every ``RETRY_S``."""
        for sid in sorted(self.unplaced):
            try:
                self._place(sid)
            except ClusterError as exc:
                log.error("stream %s could not be placed again (retrying every %g s): %s", sid, RETRY_S, exc)
            except VidpipeError as exc:
                self.unplaced.discard(sid)
                self.ledger.streams[sid].ended = "error"
                self.on_end(sid, "error", str(exc))
                self.ends[sid].set()

    def housekeeping(self) -> None:
        """On the poll thread, between rounds: publish the status now and then."""
        now = time.monotonic()
        if now >= self._next_publish:
            self._next_publish = now + PUBLISH_S
            publish(self.status_key, self.status())

    def _maintain(self) -> None:
        """The maintenance thread: place the streams of a lost worker (at once) and those
        waiting for room (every ``RETRY_S``); stop workers idle too long."""
        while not self._closing.is_set():
            self._heal.wait(RETRY_S)
            self._heal.clear()
            if self.unplaced and not self._closing.is_set():
                with self.ops:
                    self._place_waiting()
            now = time.monotonic()
            with self.lock:
                idle = [self.workers[w] for w in self.placement.idle() if w in self.workers]
                spare = len(self.workers) - self.cluster.min_workers
            for h in idle[:max(0, spare)]:
                if h.idle_since is not None and now - h.idle_since > self.cluster.idle_drain_s:
                    self._drain(h)

    def _drain(self, handle: WorkerHandle) -> None:
        with self.ops, self.lock:
            load = self.placement.workers.get(handle.worker_id)
            if load is None or load.streams:
                return  # a stream came meanwhile
            self.workers.pop(handle.worker_id, None)
            self.placement.remove_worker(handle.worker_id)
            handle.lost = "drained (idle)"
            self._event(f"worker {handle.worker_id} drained: idle for {self.cluster.idle_drain_s:g} s")
        stop_worker(self.ray, handle)

    def _event(self, line: str) -> None:
        log.warning("%s", line) if "lost" in line else log.info("%s", line)
        with self.lock:
            self.events = [*self.events[-(EVENTS_KEPT - 1):], f"{time.strftime('%H:%M:%S')} {line}"]

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The placement: workers (node, streams, heartbeat), streams (worker, last frame,
        delivered, moves), totals, recent events (:func:`pipeline.app.cluster.status.snapshot`)."""
        with self.lock:
            workers = {wid: (h, list(self.placement.workers[wid].streams)) for wid, h in self.workers.items()}
            events = list(self.events)
        return snapshot(workers, self.cluster.streams_per_worker, self.ledger.snapshot(), events)
