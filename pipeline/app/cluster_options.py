"""Cluster mode's options: what each worker asks of Ray, how many streams it takes, the
control plane's clocks (the ``cluster:`` section of a pipeline YAML, read only with
``--cluster``), and the ``--cluster`` URL. Beside :mod:`pipeline.app.config`, which
composes it, rather than in :mod:`pipeline.app.cluster` (which imports that config).

Example:
    >>> ClusterConfig(num_gpus=0.25).actor_options()
    {'num_cpus': 1.0, 'num_gpus': 0.25, 'max_concurrency': 8}
    >>> parse_cluster_url("ray://10.0.0.5:6379"), parse_cluster_url("ray")
    ('10.0.0.5:6379', None)
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pipeline.core.errors import ConfigError
from pipeline.core.options import Options

MAX_CONCURRENCY = 8  # a worker's calls that run at once: take (the heartbeat) never waits behind an add


class ClusterConfig(Options):
    num_cpus: float = Field(1.0, ge=0, description="CPUs each worker reserves (fractions allowed); also its ONNX "
                                                     "Runtime threads where model.intra_op_threads is unset (at least 1)")
    num_gpus: float = Field(0.0, ge=0, description="GPUs each worker reserves; 0.5: two workers share one GPU")
    resources: dict[str, float] = Field(default_factory=dict, description="custom Ray resources each worker needs")
    streams_per_worker: int = Field(4, ge=1, description="a worker's capacity: streams placed on it before another is added")
    min_workers: int = Field(1, ge=0, description="workers started at once and kept while idle")
    max_workers: int | None = Field(None, ge=1, description="None: as many as the cluster's resources allow")
    heartbeat_timeout_s: float = Field(10.0, gt=0, description="a worker silent this long is lost: its streams move")
    start_timeout_s: float = Field(120.0, gt=0, description="a worker that has not loaded its model by then is given up")
    publish_host: str | None = Field(None, description="each worker also publishes its results on ZeroMQ, bound to a "
                                                       "free port of this address (0.0.0.0: every interface, announced "
                                                       "as the node's IP); ClusterSubscriber follows them all")
    idle_drain_s: float = Field(30.0, ge=0, description="a worker without streams this long (beyond min_workers) is removed")

    def actor_options(self) -> dict[str, Any]:
        """The ``ray.remote(...).options`` of a worker."""
        opts: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_concurrency": MAX_CONCURRENCY}
        if self.resources:
            opts["resources"] = dict(self.resources)
        return opts

    def demand(self) -> dict[str, float]:
        """The resources one worker takes, by Ray's names."""
        need = {"CPU": self.num_cpus, "GPU": self.num_gpus, **self.resources}
        return {k: v for k, v in need.items() if v}


def parse_cluster_url(url: str) -> str | None:
    """``ray`` → None (RAY_ADDRESS, a cluster on this machine, else a new local one);
    ``ray://HOST:PORT`` → ``HOST:PORT``, the cluster's GCS address (``ray start --head``
    prints it; 6379 by default). A ConfigError names anything else."""
    if url == "ray":
        return None
    if url.startswith("ray://"):
        address = url[len("ray://"):].rstrip("/")
        host, _, port = address.rpartition(":")
        if host and port.isdigit():
            return address
    raise ConfigError(f"--cluster {url!r}: expected 'ray' or 'ray://HOST:PORT' (the Ray cluster's GCS address)")
