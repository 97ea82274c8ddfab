"""The control plane's Prometheus metrics: cluster totals and a series per worker and stream,
read from :meth:`ClusterControl.status` at scrape time (the ``metrics:`` section of the
pipeline YAML: ``vidpipe run --cluster`` serves them on its port).

Totals: ``vidpipe_cluster_workers``, ``vidpipe_cluster_streams``,
``vidpipe_cluster_results_total``, ``vidpipe_cluster_duplicates_dropped_total``,
``vidpipe_cluster_moves_total``, ``vidpipe_cluster_results_per_second``.
Per worker (labels ``worker``, ``node``): ``vidpipe_cluster_worker_streams``,
``vidpipe_cluster_worker_capacity``, ``vidpipe_cluster_worker_results_total``,
``vidpipe_cluster_worker_heartbeat_age_seconds``. Per stream (labels ``stream``,
``worker``): ``vidpipe_cluster_stream_results_total``, ``vidpipe_cluster_stream_last_frame``,
``vidpipe_cluster_stream_moves_total``, ``vidpipe_cluster_stream_fps``.

Example:
    >>> from prometheus_client import generate_latest
    >>> m = ClusterMetrics(lambda: {"workers": {"w1": {"node": "n1", "streams": ["a"], "capacity": 4, "results": 3,
    ...     "heartbeat_age_s": 0.1}}, "streams": {"a": {"worker": "w1", "delivered": 3, "last_frame": 2, "moves": 0,
    ...     "fps": 1.5}}, "totals": {"workers": 1, "streams": 1, "delivered": 3, "duplicates_dropped": 0, "moves": 0,
    ...     "fps": 1.5}})
    >>> b'vidpipe_cluster_worker_results_total{node="n1",worker="w1"} 3.0' in generate_latest(m.registry)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.app.observability import MetricsEndpoint

TOTALS = (("workers", "vidpipe_cluster_workers", "Workers running", GaugeMetricFamily),
          ("streams", "vidpipe_cluster_streams", "Streams placed and not ended", GaugeMetricFamily),
          ("delivered", "vidpipe_cluster_results", "Results delivered by the control plane", CounterMetricFamily),
          ("duplicates_dropped", "vidpipe_cluster_duplicates_dropped", "Results dropped at or below a stream's watermark",
           CounterMetricFamily),
          ("moves", "vidpipe_cluster_moves", "Streams moved to another worker", CounterMetricFamily),
          ("fps", "vidpipe_cluster_results_per_second", "Results per second over every stream", GaugeMetricFamily))


WorkerFamilies = tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily, GaugeMetricFamily]


def worker_families(lead: list[str]) -> WorkerFamilies:
    """The per-worker families (streams, capacity, results, heartbeat age), labelled
    ``lead`` + ``worker``, ``node``: no lead here, ``pipeline`` in ``vidpipe serve``."""
    wl = [*lead, "worker", "node"]
    return (GaugeMetricFamily("vidpipe_cluster_worker_streams", "Streams placed on a worker", labels=wl),
            GaugeMetricFamily("vidpipe_cluster_worker_capacity", "Streams a worker takes", labels=wl),
            CounterMetricFamily("vidpipe_cluster_worker_results", "Results delivered from a worker", labels=wl),
            GaugeMetricFamily("vidpipe_cluster_worker_heartbeat_age_seconds", "Since a worker last answered", labels=wl))


def add_workers(families: WorkerFamilies, lead: list[str], workers: dict[str, dict[str, Any]]) -> None:
    """Each worker's line (a status's ``workers``) into :func:`worker_families`' families."""
    streams, capacity, results, age = families
    for wid, w in workers.items():
        labels = [*lead, wid, str(w.get("node"))]
        streams.add_metric(labels, len(w.get("streams", [])))
        capacity.add_metric(labels, w.get("capacity", 0))
        results.add_metric(labels, w.get("results", 0))
        age.add_metric(labels, w.get("heartbeat_age_s", 0.0))


class _ClusterCollector(Collector):
    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        s = self.status()
        for key, name, doc, family in TOTALS:
            yield family(name, doc, value=s["totals"].get(key, 0))
        workers = worker_families([])
        add_workers(workers, [], s["workers"])
        yield from workers
        sl = ["stream", "worker"]
        delivered = CounterMetricFamily("vidpipe_cluster_stream_results", "Results of a stream delivered", labels=sl)
        last = GaugeMetricFamily("vidpipe_cluster_stream_last_frame", "A stream's last delivered frame", labels=sl)
        moves = CounterMetricFamily("vidpipe_cluster_stream_moves", "Times a stream moved to another worker", labels=sl)
        fps = GaugeMetricFamily("vidpipe_cluster_stream_fps", "A stream's results per second", labels=sl)
        for sid, st in s["streams"].items():
            labels = [sid, str(st.get("worker") or "")]
            delivered.add_metric(labels, st.get("delivered", 0))
            last.add_metric(labels, st.get("last_frame", -1))
            moves.add_metric(labels, st.get("moves", 0))
            fps.add_metric(labels, st.get("fps", 0.0))
        yield from (delivered, last, moves, fps)


class ClusterMetrics(MetricsEndpoint):
    """The control plane's registry (``status``: :meth:`ClusterControl.status`)."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self.registry.register(_ClusterCollector(status))
