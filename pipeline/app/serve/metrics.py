"""The server's Prometheus metrics (``GET /metrics``): requests by route and status, their
latency, batch sizes per model and the images waiting in each model's queue; per stream of
each pipeline the server runs, its results, rate, latency and drops; the process (memory,
open descriptors) and its threads (all, and vidpipe's own: stages and model workers).

Example:
    >>> m = ServeMetrics()
    >>> m.request("/info", 200, 0.001)
    >>> b"vidpipe_serve_requests_total" in m.render()
    True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.app.cluster.metrics import add_workers, worker_families

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}


class _QueueDepth(Collector):
    """Read at scrape time: images waiting per model."""

    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self.depths = depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("vidpipe_serve_queue_depth", "images waiting for inference", labels=["model"])
        for model, depth in self.depths().items():
            g.add_metric([model], depth)
        yield g


class _Threads(Collector):
    """Read at scrape time: the process's Python threads, and vidpipe's own among them (a
    pipeline's stages, a model's worker: named ``vidpipe:...``), which a removed stream or an
    unloaded model gives back."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        names = [t.name for t in threading.enumerate()]
        g = GaugeMetricFamily("vidpipe_serve_threads", "Python threads of the server", labels=["kind"])
        g.add_metric(["all"], len(names))
        g.add_metric(["vidpipe"], sum(n.startswith("vidpipe:") for n in names))
        yield g


class _Pipelines(Collector):
    """Read at scrape time: each stream of each pipeline the server runs (its status line)."""

    def __init__(self, statuses: Callable[[], list[dict[str, Any]]]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["pipeline", "stream"]
        results = CounterMetricFamily("vidpipe_pipeline_stream_results", "results delivered", labels=labels)
        drops = CounterMetricFamily("vidpipe_pipeline_stream_drops", "frames dropped (every reason)", labels=labels)
        fps = GaugeMetricFamily("vidpipe_pipeline_stream_fps", "results per second, recent", labels=labels)
        latency = GaugeMetricFamily("vidpipe_pipeline_stream_latency_ms", "end-to-end latency percentiles, recent",
                                    labels=[*labels, "quantile"])
        states = GaugeMetricFamily("vidpipe_pipeline_streams", "streams by state", labels=["pipeline", "state"])
        # Cluster pipelines (vidpipe serve --cluster): their totals and each worker's line.
        totals = GaugeMetricFamily("vidpipe_cluster", "a cluster pipeline's totals", labels=["pipeline", "total"])
        workers = worker_families(["pipeline"])
        for status in self.statuses():
            pid, counted = status["id"], dict[str, int]()
            for sid, line in status["streams"].items():
                results.add_metric([pid, sid], line.get("results", 0))
                drops.add_metric([pid, sid], sum(line.get("drops", {}).values()))
                fps.add_metric([pid, sid], line.get("fps", 0.0))
                latencies = line.get("latency_ms")
                for q, ms in (latencies.items() if isinstance(latencies, dict) else ()):
                    latency.add_metric([pid, sid, str(QUANTILES.get(q, q))], ms)
                state = line.get("state", "unknown")
                counted[state] = counted.get(state, 0) + 1
            for state, n in counted.items():
                states.add_metric([pid, state], n)
            cluster = status.get("cluster") or {}
            for key, value in (cluster.get("totals") or {}).items():
                totals.add_metric([pid, key], value)
            add_workers(workers, [pid], cluster.get("workers") or {})
        yield from (results, drops, fps, latency, states, totals, *workers)


class ServeMetrics:
    """One registry per server (several servers in one process do not share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("vidpipe_serve_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("vidpipe_serve_request_seconds", "request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("vidpipe_serve_batch_size", "images per inference batch", ["model"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.images = Counter("vidpipe_serve_images", "images inferred", ["model"], registry=self.registry)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, process_open_fds, CPU (Linux)
        self.registry.register(_Threads())

    def watch_queues(self, depths: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_QueueDepth(depths))

    def watch_pipelines(self, statuses: Callable[[], list[dict[str, Any]]]) -> None:
        self.registry.register(_Pipelines(statuses))

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def batch(self, model: str, size: int) -> None:
        self.batch_size.labels(model).observe(size)
        self.images.labels(model).inc(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
