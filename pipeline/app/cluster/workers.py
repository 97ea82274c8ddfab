"""Starting, watching and stopping the worker actors (:class:`PipelineWorker` under Ray).

A worker is started with the resources of :class:`ClusterConfig` and must load its model
within ``start_timeout_s``; it is refused at once when no node of the cluster could ever
hold it (``num_gpus: 1`` on a cluster without GPUs), and when every node that could is
busy it is not started (the caller overloads a worker instead). A worker that fails to
build its pipeline (a model path missing on its node) is killed and its error raised.

Each handle keeps one ``take`` call in flight: the control plane's poll loop collects
what it returns and issues the next; the time of its last answer is the heartbeat.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.app.cluster.worker import PipelineWorker
from pipeline.app.cluster_options import ClusterConfig
from pipeline.core.errors import ClusterError, VidpipeError

log = logging.getLogger("vidpipe.cluster")

STOP_TIMEOUT_S = 15.0
CALL_TIMEOUT_S = 60.0  # add/remove on a worker (an RTSP open may take its open_timeout)
_ids = itertools.count(1)


@dataclass
class WorkerHandle:
    """One worker actor as the control plane sees it."""

    worker_id: str
    actor: Any
    info: dict[str, Any]
    started: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.monotonic)  # its last answer (the heartbeat)
    take_ref: Any = None  # the take call in flight
    idle_since: float | None = None  # monotonic: when its last stream left
    results: int = 0  # delivered from it
    lost: str | None = None  # why it was given up

    @property
    def node(self) -> str:
        return str(self.info.get("node") or "?")


def _fits(demand: dict[str, float], resources: dict[str, float]) -> bool:
    return all(resources.get(k, 0.0) >= v - 1e-9 for k, v in demand.items())


def check_feasible(ray: Any, cluster: ClusterConfig) -> None:
    """A ClusterError when no live node of the cluster has the resources of one worker."""
    demand = cluster.demand()
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(_fits(demand, res) for res in nodes):
        return
    have = "; ".join(", ".join(f"{k}={v:g}" for k, v in sorted(res.items()) if not k.startswith(("node:", "memory",
                     "object_store"))) for res in nodes) or "no live node"
    want = ", ".join(f"{k}={v:g}" for k, v in demand.items())
    raise ClusterError(f"no node of the Ray cluster can hold a worker needing {want} (nodes have: {have})")


def has_room(ray: Any, cluster: ClusterConfig) -> bool:
    """Whether the cluster has the free resources of one more worker now."""
    return _fits(cluster.demand(), ray.available_resources())


def start_worker(ray: Any, cluster: ClusterConfig, config: dict[str, Any], keep_images: bool) -> WorkerHandle:
    """Start one worker and wait until its model is loaded; a ClusterError otherwise."""
    remote = ray.remote(PipelineWorker).options(**cluster.actor_options())
    actor = remote.remote(config, keep_images, publish_host=cluster.publish_host)
    wid = f"w{next(_ids)}"
    try:
        info = ray.get(actor.ready.remote(), timeout=cluster.start_timeout_s)
    except ray.exceptions.GetTimeoutError:
        kill(ray, actor)
        raise ClusterError(f"worker {wid} did not start in {cluster.start_timeout_s:g} s (the cluster has no free "
                           f"{', '.join(f'{k}={v:g}' for k, v in cluster.demand().items())}?)") from None
    except ray.exceptions.RayError as exc:
        kill(ray, actor)
        raise ClusterError(f"worker {wid} failed to start: {exc}") from None
    if info.get("error"):
        kill(ray, actor)
        raise ClusterError(f"worker {wid} on node {str(info.get('node'))[:12]} ({info.get('host')}) could not build "
                           f"its pipeline: {info['error']}")
    log.info("worker %s up on node %s (%s, pid %s)", wid, str(info.get("node"))[:12], info.get("host"), info.get("pid"))
    return WorkerHandle(wid, actor, info)


def kill(ray: Any, actor: Any) -> None:
    """Kill an actor for good (no restart); quiet if it is already gone."""
    try:
        ray.kill(actor, no_restart=True)
    except Exception as exc:  # noqa: BLE001 - already dead, or the cluster is going away
        log.debug("killing a worker: %s", exc)


def stop_worker(ray: Any, handle: WorkerHandle) -> None:
    """Stop its pipeline (bounded), then kill the actor."""
    try:
        ray.get(handle.actor.close.remote(), timeout=STOP_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - dead or stuck: killed below either way
        log.debug("worker %s did not close: %s", handle.worker_id, exc)
    kill(ray, handle.actor)


def call(ray: Any, handle: WorkerHandle, method: str, *args: Any, on_lost: Callable[[WorkerHandle, str], None]) -> Any:
    """A worker's method, waited for: its VidpipeError raised as itself (a stream's bad
    config or source), Ray's errors as a ClusterError after ``on_lost`` (the worker died)."""
    try:
        return ray.get(getattr(handle.actor, method).remote(*args), timeout=CALL_TIMEOUT_S)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, VidpipeError):
            raise type(cause)(str(cause)) from None
        raise ClusterError(f"worker {handle.worker_id}: {method} failed: {cause or exc}") from None
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
        on_lost(handle, f"{method} failed: {type(exc).__name__}")
        raise ClusterError(f"worker {handle.worker_id} was lost during {method}: {type(exc).__name__}") from None
