"""Joining a Ray cluster as the control plane's driver, with errors that say what failed.

``connect(None)`` uses ``RAY_ADDRESS`` or a cluster already running on this machine, and
starts a local one when there is none (``vidpipe run --cluster ray`` on a laptop);
``connect("HOST:PORT")`` joins that cluster, after checking that its GCS answers at all
(Ray itself would retry for a minute before saying so).

Example::

    connect("10.0.0.5:6379")    # ClusterError: cannot reach the Ray cluster at 10.0.0.5:6379: ...
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from pipeline.core.errors import ClusterError

log = logging.getLogger("vidpipe.cluster")

REACH_TIMEOUT_S = 3.0


def import_ray() -> Any:
    """The ``ray`` module, or a ClusterError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError("cluster mode needs Ray: pip install 'vidpipe[ray]'") from None
    return ray


def check_reachable(address: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """A TCP connection to the GCS at ``HOST:PORT``, or a ClusterError naming it."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {why} "
                           "(is `ray start --head` running there, and its port open?)") from None


def connect(address: str | None) -> Any:
    """Join (or start) the cluster; the ``ray`` module. Already connected: kept as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address is not None:
        check_reachable(address)
    target = address or os.environ.get("RAY_ADDRESS")
    try:
        if target:
            ray.init(address=target, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(logging_level=logging.WARNING, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot join the Ray cluster at {target or 'this machine'}: {exc}") from None
    log.info("joined the Ray cluster at %s: %s", target or "a new local one", ray.cluster_resources())
    return ray
