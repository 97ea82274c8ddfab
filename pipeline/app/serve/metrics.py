"""The server's Prometheus metrics (``GET /metrics``): requests by route and status, their
latency, batch sizes per model and the images waiting in each model's queue.

Example:
    >>> m = ServeMetrics()
    >>> m.request("/info", 200, 0.001)
    >>> b"vidpipe_serve_requests_total" in m.render()
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class _QueueDepth(Collector):
    """Read at scrape time: images waiting per model."""

    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self.depths = depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("vidpipe_serve_queue_depth", "images waiting for inference", labels=["model"])
        for model, depth in self.depths().items():
            g.add_metric([model], depth)
        yield g


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

    def watch_queues(self, depths: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_QueueDepth(depths))

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def batch(self, model: str, size: int) -> None:
        self.batch_size.labels(model).observe(size)
        self.images.labels(model).inc(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
