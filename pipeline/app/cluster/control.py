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

Operations (add, remove, the moves of a loss, draining) run one at a time (``ops``); the
poll thread never waits for one except when it heals a loss itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline.app.cluster.delivery import Ledger
from pipeline.app.cluster.placement import Placement
from pipeline.app.cluster.worker import Item
from pipeline.app.cluster.workers import WorkerHandle, check_feasible, has_room, kill, start_worker, stop_worker
from pipeline.app.cluster_options import ClusterConfig
from pipeline.app.config import load_stream_config
from pipeline.core.errors import ClusterError, StreamExistsError, UnknownStreamError, VidpipeError
from pipeline.vision.result import Result

log = logging.getLogger("vidpipe.cluster")

TAKE_MAX, TAKE_WAIT_S = 512, 0.2  # results per take; how long a take waits for one
POLL_S = 0.05
CALL_TIMEOUT_S = 60.0  # add/remove on a worker (an RTSP open may take its open_timeout)
RETRY_S = 2.0  # streams waiting for a worker are tried again this often
EVENTS_KEPT = 50

ResultHook = Callable[[Result], None]
EndHook = Callable[[str, str, str | None], None]  # stream id, reason, error


class ClusterControl:
    """See the module docstring. ``ray``: the connected module (:func:`connect`)."""

    def __init__(self, ray: Any, worker_config: dict[str, Any], cluster: ClusterConfig, on_result: ResultHook,
                 on_end: EndHook, keep_images: bool = False) -> None:
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
        self._stop = threading.Event()
        self._next_retry = 0.0
        self.thread = threading.Thread(target=self._poll, name="vidpipe:cluster-poll", daemon=True)

    # -- lifetime -------------------------------------------------------------------------
    def start(self) -> None:
        """Check the cluster can hold a worker, start ``min_workers``, start polling."""
        check_feasible(self.ray, self.cluster)
        with self.ops:
            for _ in range(self.cluster.min_workers):
                self._grow(required=True)
        self.thread.start()

    def close(self) -> None:
        """Stop polling and every worker (their streams end ``stopped``, not delivered)."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(CALL_TIMEOUT_S)
        with self.lock:
            handles, self.workers = list(self.workers.values()), {}
        for h in handles:
            stop_worker(self.ray, h)

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
            self._call(handle, "add", entry.config, resume if resume >= 0 else None)
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

    def _call(self, handle: WorkerHandle, method: str, *args: Any) -> Any:
        """A worker's method, waited for; its VidpipeError raised as itself, Ray's errors as
        a ClusterError (and the worker lost)."""
        ray = self.ray
        try:
            return ray.get(getattr(handle.actor, method).remote(*args), timeout=CALL_TIMEOUT_S)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, VidpipeError):
                raise type(cause)(str(cause)) from None
            raise ClusterError(f"worker {handle.worker_id}: {method} failed: {cause or exc}") from None
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            self._lose(handle, f"{method} failed: {type(exc).__name__}")
            raise ClusterError(f"worker {handle.worker_id} was lost during {method}: {type(exc).__name__}") from None

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
        self._release(sid)
        line = self.ledger.snapshot().get(sid, {})
        self.ledger.forget(sid)
        self.paused.discard(sid)
        return line

    def pause(self, sid: str | None, paused: bool) -> None:
        """Pause or resume one stream, or every stream (None); carried over when it moves."""
        with self.ops:
            targets = list(self.ledger.streams) if sid is None else [sid]
            if sid is not None and sid not in self.ledger.streams:
                raise UnknownStreamError(f"no stream {sid!r} in the cluster pipeline")
            for s in targets:
                (self.paused.add if paused else self.paused.discard)(s)
                handle = self.workers.get(self.ledger.streams[s].worker or "")
                if handle is not None and self.ledger.streams[s].ended is None:
                    self._call(handle, "pause", s, paused)

    def _release(self, sid: str) -> None:
        """The stream has ended: off its worker's slot (and off the worker: fire and forget)."""
        with self.lock:
            wid = self.placement.unassign(sid)
            handle = self.workers.get(wid or "")
            if handle is not None and not self.placement.workers[handle.worker_id].streams:
                handle.idle_since = time.monotonic()
        if handle is not None:
            handle.actor.forget.remote(sid)

    # -- the poll loop --------------------------------------------------------------------
    def _poll(self) -> None:
        ray = self.ray
        while not self._stop.is_set():
            with self.lock:
                handles = [h for h in self.workers.values() if h.lost is None]
            for h in handles:
                if h.take_ref is None:
                    h.take_ref = h.actor.take.remote(TAKE_MAX, TAKE_WAIT_S)
            if not handles:
                self._stop.wait(POLL_S)
            else:
                by_ref = {h.take_ref: h for h in handles}
                ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=POLL_S)
                for ref in ready:
                    self._collect(by_ref[ref], ref)
            self._check_heartbeats(handles)
            self._housekeeping()

    def _collect(self, handle: WorkerHandle, ref: Any) -> None:
        ray = self.ray
        handle.take_ref = None
        try:
            items = ray.get(ref)
        except ray.exceptions.ActorUnavailableError:
            return  # maybe back soon: the heartbeat clock decides
        except ray.exceptions.RayError as exc:
            self._lose(handle, f"died ({type(exc).__name__})")
            return
        handle.last_seen = time.monotonic()
        self._deliver(handle, items)

    def _deliver(self, handle: WorkerHandle, items: list[Item]) -> None:
        for item in items:
            if item[0] == "result":
                result = self.ledger.admit(handle.worker_id, item[1])
                if result is not None:
                    handle.results += 1
                    self.on_result(result)
            elif self.ledger.end(handle.worker_id, item[1], item[2]):
                self.on_end(item[1], item[2], item[3])
                self.ends[item[1]].set()
                if not self.ledger.streams[item[1]].removing:
                    self._release(item[1])

    def _check_heartbeats(self, handles: list[WorkerHandle]) -> None:
        now = time.monotonic()
        for h in handles:
            silent = now - h.last_seen
            if h.lost is None and silent > self.cluster.heartbeat_timeout_s:
                self._lose(h, f"no heartbeat for {silent:.1f} s")

    def _lose(self, handle: WorkerHandle, why: str) -> None:
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
            self._place_waiting()

    def _place_waiting(self) -> None:
        for sid in sorted(self.unplaced):
            try:
                self._place(sid)
            except VidpipeError as exc:
                log.error("stream %s could not be placed again (retrying every %g s): %s", sid, RETRY_S, exc)
        self._next_retry = time.monotonic() + RETRY_S

    def _housekeeping(self) -> None:
        """Retry streams waiting for a worker; stop workers idle too long."""
        now = time.monotonic()
        if self.unplaced and now >= self._next_retry:
            with self.ops:
                self._place_waiting()
        with self.lock:
            idle = [self.workers[w] for w in self.placement.idle() if w in self.workers]
            spare = len(self.workers) - self.cluster.min_workers
        for h in idle[:max(0, spare)]:
            if h.idle_since is not None and now - h.idle_since > self.cluster.idle_drain_s:
                self._drain(h)

    def _drain(self, handle: WorkerHandle) -> None:
        with self.ops:
            with self.lock:
                if self.placement.workers.get(handle.worker_id) is None or self.placement.workers[handle.worker_id].streams:
                    return  # a stream came meanwhile
                self.workers.pop(handle.worker_id, None)
                self.placement.remove_worker(handle.worker_id)
                handle.lost = "drained (idle)"
            stop_worker(self.ray, handle)
            self._event(f"worker {handle.worker_id} drained: idle for {self.cluster.idle_drain_s:g} s")

    def _event(self, line: str) -> None:
        log.warning("%s", line) if "lost" in line else log.info("%s", line)
        with self.lock:
            self.events = [*self.events[-(EVENTS_KEPT - 1):], f"{time.strftime('%H:%M:%S')} {line}"]

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The placement: workers (node, streams, heartbeat), streams (worker, last frame,
        delivered, moves), totals, recent events."""
        now = time.monotonic()
        with self.lock:
            workers = {wid: {"node": h.node, "host": h.info.get("host"), "pid": h.info.get("pid"),
                             "streams": list(self.placement.workers[wid].streams), "capacity": self.cluster.streams_per_worker,
                             "results": h.results, "heartbeat_age_s": round(now - h.last_seen, 2),
                             "up_s": round(time.time() - h.started, 1)} for wid, h in self.workers.items()}
            events = list(self.events)
        streams = self.ledger.snapshot()
        totals = {"workers": len(workers), "streams": sum(1 for s in streams.values() if not s["state"].startswith("ended")),
                  "delivered": sum(s["delivered"] for s in streams.values()),
                  "duplicates_dropped": sum(s["duplicates_dropped"] for s in streams.values()),
                  "moves": sum(s["moves"] for s in streams.values()), "fps": round(sum(s["fps"] for s in streams.values()), 2)}
        return {"workers": workers, "streams": streams, "totals": totals, "events": events}
