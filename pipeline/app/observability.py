"""One metrics registry per pipeline, served to Prometheus on 127.0.0.1 by default.

Observed per result (by the Tracker stage): end-to-end latency and every stage's time as
histograms per stream. Read at scrape time from the live pipeline: per-stage items, busy
time, busy fraction and fps; ring depth, capacity and drops; per-stream frames, results,
drops by reason, state and reconnects. The run summary adds latency p50/p95/p99 per
stream from a bounded window of recent results.

Example:
    >>> from prometheus_client import generate_latest
    >>> m = LatencyWindow(3)
    >>> for v in (10.0, 20.0, 30.0, 40.0):
    ...     m.add(v)
    >>> m.percentiles()
    {'p50': 30.0, 'p95': 39.0, 'p99': 39.8}
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.core.errors import VidpipeError

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.pipeline import Pipeline
    from pipeline.vision.result import Result

log = logging.getLogger("vidpipe.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
STATES = ("created", "connecting", "streaming", "reconnecting", "paused", "ended", "stopped", "failed", "removed")


class LatencyWindow:
    """The last ``size`` values, for percentiles in summaries."""

    def __init__(self, size: int = 2000) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self.values.append(value)

    def percentiles(self) -> dict[str, float]:
        with self._lock:
            if not self.values:
                return {}
            p = np.percentile(np.fromiter(self.values, float), [50, 95, 99])
        return {"p50": round(float(p[0]), 3), "p95": round(float(p[1]), 3), "p99": round(float(p[2]), 3)}


class _PipelineCollector(Collector):
    """Reads the pipeline's counters when Prometheus scrapes."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self):
        p = self.pipeline
        items = CounterMetricFamily("vidpipe_stage_items", "Items a stage has processed", labels=["stage"])
        busy = CounterMetricFamily("vidpipe_stage_busy_seconds", "Time a stage spent working", labels=["stage"])
        frac = GaugeMetricFamily("vidpipe_stage_busy_fraction", "Busy time / wall time", labels=["stage"])
        fps = GaugeMetricFamily("vidpipe_stage_fps", "Items per second since start", labels=["stage"])
        for stage in p.stages:
            st = stage.stats()
            items.add_metric([stage.name], st["items"])
            busy.add_metric([stage.name], st["busy_s"])
            frac.add_metric([stage.name], st["busy_fraction"])
            fps.add_metric([stage.name], st["fps"])
        yield from (items, busy, frac, fps)
        depth = GaugeMetricFamily("vidpipe_ring_depth", "Items waiting in a ring", labels=["ring"])
        cap = GaugeMetricFamily("vidpipe_ring_capacity", "Ring capacity", labels=["ring"])
        rdrop = CounterMetricFamily("vidpipe_ring_dropped", "Items a ring dropped", labels=["ring"])
        for ring in p.rings:
            depth.add_metric([ring.name], len(ring))
            cap.add_metric([ring.name], ring.capacity)
            rdrop.add_metric([ring.name], ring.stats.dropped)
        yield from (depth, cap, rdrop)
        frames = CounterMetricFamily("vidpipe_stream_frames", "Frames decoded", labels=["stream"])
        results = CounterMetricFamily("vidpipe_stream_results", "Results delivered", labels=["stream"])
        drops = CounterMetricFamily("vidpipe_stream_drops", "Drops by reason", labels=["stream", "reason"])
        state = GaugeMetricFamily("vidpipe_stream_state", "1 for the stream's current state", labels=["stream", "state"])
        reconnects = CounterMetricFamily("vidpipe_stream_reconnects", "Reconnects of a live source", labels=["stream"])
        live = {sid: s.summary() for sid, s in p.streams.items()}
        # Removed streams keep their last figures (counters never go back) with state removed.
        for sid, s in {**p.control.snapshot()[0], **live}.items():
            frames.add_metric([sid], s["frames"])
            results.add_metric([sid], s["results"])
            for reason, n in s["drops"].items():
                drops.add_metric([sid, reason], n)
            for name in STATES:
                state.add_metric([sid, name], 1.0 if s["state"] == name else 0.0)
            reconnects.add_metric([sid], s.get("reconnects", 0))
        yield from (frames, results, drops, state, reconnects)


class MetricsEndpoint:
    """A registry and its HTTP endpoint: ``serve()`` starts it (owned), ``close()`` stops it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise VidpipeError(f"metrics endpoint cannot listen on {host}:{port}: {exc.strerror}") from exc
        bound = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


class PipelineMetrics(MetricsEndpoint):
    """The registry of one pipeline; ``serve()`` starts its HTTP endpoint (owned, stopped
    by ``close()``)."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__()
        self.latency = Histogram("vidpipe_latency_seconds", "Capture (arrival) to result", ["stream"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.stage_time = Histogram("vidpipe_stage_seconds", "Time per frame in each stage", ["stream", "stage"],
                                    buckets=STAGE_BUCKETS, registry=self.registry)
        self.registry.register(_PipelineCollector(pipeline))
        self.windows: dict[str, LatencyWindow] = {}
        self._stages: dict[str, set[str]] = {}  # per stream: the stages its histograms have, to forget them

    def observe(self, result: Result) -> None:
        self.latency.labels(result.stream_id).observe(result.latency_ms / 1000)
        for stage, ms in result.timings.items():
            self.stage_time.labels(result.stream_id, stage).observe(ms / 1000)
        window = self.windows.get(result.stream_id)
        if window is None:
            window = self.windows[result.stream_id] = LatencyWindow()
            self._stages[result.stream_id] = set()
        stages = self._stages[result.stream_id]
        if not stages.issuperset(result.timings):
            stages.update(result.timings)
        window.add(result.latency_ms)

    def forget(self, stream_id: str) -> dict[str, float]:
        """Drop a removed stream's histograms and window; returns its latency percentiles.
        (Called after its end passed the tracker: nothing observes it any more.)"""
        window = self.windows.pop(stream_id, None)
        for stage in self._stages.pop(stream_id, set()):
            with contextlib.suppress(KeyError):
                self.stage_time.remove(stream_id, stage)
        if window is None:
            return {}
        with contextlib.suppress(KeyError):
            self.latency.remove(stream_id)
        return window.percentiles()

    def latency_summary(self) -> dict[str, Any]:
        return {sid: w.percentiles() for sid, w in list(self.windows.items())}  # streams join and leave meanwhile
