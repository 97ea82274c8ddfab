"""The placement, published in the cluster for ``vidpipe cluster status``.

Every control plane writes its status (:meth:`ClusterControl.status`) as JSON into Ray's
internal key-value store about once a second, under ``vidpipe/<pipeline name>/<pid>``
(namespace ``vidpipe``), and deletes it when it stops; so any process that can join the
cluster can print where every stream runs, without knowing where the control planes are.
(The store is Ray's own, used by its dashboard; its Python API is marked internal.)

Example of the printed form:
    >>> print(format_status("demo/123", {"workers": {"w1": {"node": "a1b2c3d4e5f6a7", "host": "n1", "streams": ["cam"],
    ...     "capacity": 4, "results": 10, "heartbeat_age_s": 0.1}}, "streams": {"cam": {"worker": "w1", "last_frame": 9,
    ...     "delivered": 10, "moves": 0, "fps": 5.0, "state": "streaming"}}, "totals": {"workers": 1, "streams": 1,
    ...     "delivered": 10, "moves": 0, "fps": 5.0}, "events": []}))
    control plane demo/123: 1 worker(s), 1 stream(s), 10 results delivered, 5.0 results/s, 0 move(s)
      worker  node          host          streams  capacity  results  heartbeat
      w1      a1b2c3d4e5f6  n1                  1         4       10       0.1s
      stream  worker  state      last frame  delivered  moves    fps
      cam     w1      streaming           9         10      0    5.0
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.cluster.workers import WorkerHandle

log = logging.getLogger("vidpipe.cluster")

NAMESPACE = "vidpipe"


def snapshot(workers: dict[str, tuple[WorkerHandle, list[str]]], capacity: int, streams: dict[str, dict[str, Any]],
             events: list[str]) -> dict[str, Any]:
    """A control plane's status from its workers (handle, streams) and its ledger's lines."""
    now = time.monotonic()
    lines = {wid: {"node": h.node, "host": h.info.get("host"), "pid": h.info.get("pid"), "streams": placed,
                   "publisher": h.info.get("publisher"),
                   "capacity": capacity, "results": h.results, "heartbeat_age_s": round(now - h.last_seen, 2),
                   "up_s": round(time.time() - h.started, 1)} for wid, (h, placed) in workers.items()}
    running = [s for s in streams.values() if s["state"] not in ("ended", "failed", "removed", "stopped")]
    totals = {"workers": len(lines), "streams": len(running), "delivered": sum(s["delivered"] for s in streams.values()),
              "duplicates_dropped": sum(s["duplicates_dropped"] for s in streams.values()),
              "moves": sum(s["moves"] for s in streams.values()), "fps": round(sum(s["fps"] for s in streams.values()), 2)}
    return {"workers": lines, "streams": streams, "totals": totals, "events": events}


def status_key(name: str) -> str:
    return f"vidpipe/{name}/{os.getpid()}"


def publish(key: str, status: dict[str, Any]) -> None:
    from ray.experimental import internal_kv

    try:
        internal_kv._internal_kv_put(key, json.dumps(status, default=str), overwrite=True, namespace=NAMESPACE)
    except Exception as exc:  # noqa: BLE001 - status is best effort: never stops the control plane
        log.debug("publishing the cluster status failed: %s", exc)


def withdraw(key: str) -> None:
    from ray.experimental import internal_kv

    try:
        internal_kv._internal_kv_del(key, namespace=NAMESPACE)
    except Exception as exc:  # noqa: BLE001 - the cluster may be gone already
        log.debug("withdrawing the cluster status failed: %s", exc)


def read_all() -> dict[str, dict[str, Any]]:
    """Every control plane's last status, by ``<pipeline name>/<pid>``."""
    from ray.experimental import internal_kv

    out: dict[str, dict[str, Any]] = {}
    for raw in internal_kv._internal_kv_list("vidpipe/", namespace=NAMESPACE):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        value = internal_kv._internal_kv_get(key, namespace=NAMESPACE)
        if value:
            out[key[len("vidpipe/"):]] = json.loads(value)
    return out


def format_status(name: str, status: dict[str, Any]) -> str:
    """A control plane's status as text: totals, one line per worker, one per stream."""
    t = status.get("totals", {})
    lines = [f"control plane {name}: {t.get('workers', 0)} worker(s), {t.get('streams', 0)} stream(s), "
             f"{t.get('delivered', 0)} results delivered, {t.get('fps', 0.0)} results/s, {t.get('moves', 0)} move(s)",
             f"  {'worker':<7} {'node':<13} {'host':<13} {'streams':>7} {'capacity':>9} {'results':>8} {'heartbeat':>10}"]
    for wid, w in status.get("workers", {}).items():
        lines.append(f"  {wid:<7} {str(w.get('node'))[:12]:<13} {str(w.get('host'))[:12]:<13} {len(w.get('streams', [])):>7} "
                     f"{w.get('capacity', 0):>9} {w.get('results', 0):>8} {w.get('heartbeat_age_s', 0):>9}s")
    lines.append(f"  {'stream':<7} {'worker':<7} {'state':<10} {'last frame':>10} {'delivered':>10} {'moves':>6} {'fps':>6}")
    for sid, s in status.get("streams", {}).items():
        lines.append(f"  {sid:<7} {str(s.get('worker') or '-'):<7} {s.get('state', ''):<10} {s.get('last_frame', -1):>10} "
                     f"{s.get('delivered', 0):>10} {s.get('moves', 0):>6} {s.get('fps', 0.0):>6}")
    lines.extend(f"  event: {e}" for e in status.get("events", [])[-5:])
    return "\n".join(lines)
