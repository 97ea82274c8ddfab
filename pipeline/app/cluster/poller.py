"""The control plane's poll thread: results taken from every worker, delivered, heartbeats.

One ``take`` is kept in flight per worker (:meth:`PipelineWorker.take`, which answers
within its wait even with nothing to give). Each answer is the worker's heartbeat; its
items go through the ledger (:mod:`pipeline.app.cluster.delivery`) and, admitted, to the
control plane's ``on_result`` / ``on_end``: delivered, in the order the worker made them.
A take that raises Ray's actor errors, or a worker silent for ``heartbeat_timeout_s``,
is a loss (:meth:`ClusterControl.lose`). Between rounds: the control plane's housekeeping.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from pipeline.app.cluster.worker import Item
from pipeline.app.cluster.workers import WorkerHandle

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.cluster.control import ClusterControl

TAKE_MAX, TAKE_WAIT_S = 512, 0.2  # results per take; how long a take waits for one
POLL_S = 0.05


class Poller:
    """The thread ``vidpipe:cluster-poll`` of one control plane (started and stopped by it)."""

    def __init__(self, control: ClusterControl) -> None:
        self.control = control
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="vidpipe:cluster-poll", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout_s)

    def _poll(self) -> None:
        ray = self.control.ray
        while not self._stop.is_set():
            with self.control.lock:
                handles = [h for h in self.control.workers.values() if h.lost is None]
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
            self.control.housekeeping()

    def _collect(self, handle: WorkerHandle, ref: Any) -> None:
        ray = self.control.ray
        handle.take_ref = None
        try:
            items = ray.get(ref)
        except ray.exceptions.ActorUnavailableError:
            return  # maybe back soon: the heartbeat clock decides
        except ray.exceptions.RayError as exc:
            self.control.lose(handle, f"died ({type(exc).__name__})")
            return
        handle.last_seen = time.monotonic()
        self._deliver(handle, items)

    def _deliver(self, handle: WorkerHandle, items: list[Item]) -> None:
        for item in items:
            if item[0] == "result":
                result = self.control.ledger.admit(handle.worker_id, item[1])
                if result is not None:
                    handle.results += 1
                    self.control.on_result(result)
            elif self.control.ledger.end(handle.worker_id, item[1], item[2]):
                self.control.on_end(item[1], item[2], item[3])
                self.control.ends[item[1]].set()
                if not self.control.ledger.streams[item[1]].removing:
                    self.control.release(item[1])

    def _check_heartbeats(self, handles: list[WorkerHandle]) -> None:
        now = time.monotonic()
        for h in handles:
            silent = now - h.last_seen
            if h.lost is None and silent > self.control.cluster.heartbeat_timeout_s:
                self.control.lose(h, f"no heartbeat for {silent:.1f} s")

