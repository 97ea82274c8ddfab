"""The Pipeline: owns every stage thread and ring, supervises the bus, reports a summary.

    Source ──ring──> Decoder ──ring──┐
    Source ──ring──> Decoder ──ring──┼──> Batcher+Inference ──ring──> Tracker ──ring──> Sink(s)

Three ways to use it:

    >>> from pipeline import Pipeline
    >>> cfg = {"streams": [{"id": "sim", "source": {"type": "synthetic", "frames": 3, "width": 320, "height": 180}}]}
    >>> with Pipeline.from_config(cfg) as p:
    ...     [r.frame_index for r in p]
    [0, 1, 2]

or ``Pipeline.from_config("configs/demo.yaml").run()`` which returns the summary.

Failures: an error in a stream's own stages (source, decoder) ends that stream and the
others run on; ``run()`` raises it (a :class:`StageError` naming stage and stream) once
the rest has finished. An error in a shared stage (inference, tracker, sink) stops
everything at once and is raised. Either way every thread is stopped and joined.
SIGINT/SIGTERM during ``run()``: the sources stop, frames in flight finish, sinks flush
and close (a graceful drain); a second signal aborts.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.app.config import PipelineConfig, load_config, load_config_dict
from pipeline.app.observability import PipelineMetrics
from pipeline.core.errors import StageError
from pipeline.core.items import EndOfStream, StreamInfo
from pipeline.core.ring import RingBuffer, RingClosed, RingEmpty
from pipeline.core.stage import Bus, BusMessage, Stage
from pipeline.core.stats import StreamStats
from pipeline.infer.model import Model
from pipeline.infer.stage import InferenceStage
from pipeline.track.stage import TrackerStage
from pipeline.vision.result import Result
from sinks.base import Sink, SinkStage
from sources.base import Source
from sources.decoder import Decoder

log = logging.getLogger("vidpipe.pipeline")

JOIN_TIMEOUT_S = 3.0


class Pipeline:
    def __init__(
        self,
        sources: Sequence[Source],
        model: Model,
        sinks: Sequence[Sink] = (),
        max_batch_size: int = 1,
        max_wait_ms: float = 10.0,
        ring_sizes: dict[str, int] | None = None,
        frame_ring_policies: dict[str, str] | None = None,
        decoder_threads: int = 0,
        name: str = "vidpipe",
        tracker_factory: Callable[[StreamInfo], Any] | None = None,
        infer_intervals: dict[str, int] | None = None,
        carry_masks: bool = True,
        max_fps: dict[str, float] | None = None,
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        hwaccel: dict[str, tuple[str, str | None]] | None = None,
    ) -> None:
        if not sources:
            raise ValueError("a pipeline needs at least one source")
        self.name = name
        self.model = model
        self.sinks = list(sinks)
        sizes = {"packets": 64, "frames": 4, "results": 32, "sink": 64, **(ring_sizes or {})}
        self.ring_sizes = sizes
        self.bus = Bus()
        self.streams: dict[str, StreamStats] = {}
        self.sources = list(sources)
        self.decoders: list[Decoder] = []
        self.rings: list[RingBuffer] = []
        waker = threading.Event()
        frame_rings: dict[str, RingBuffer] = {}
        policies = frame_ring_policies or {}
        for src in self.sources:
            sid = src.stream_id
            if sid in self.streams:
                raise ValueError(f"two sources use stream id {sid!r}")
            stats = self.streams[sid] = StreamStats(sid)
            live = src.live
            # Live packets are never dropped by the ring: the source skips whole GOPs instead.
            packets = self._ring(sizes["packets"], "drop_newest" if live else "block", f"packets:{sid}")
            frame_policy = policies.get(sid) or ("drop_oldest" if live else "block")
            frames = self._ring(sizes["frames"], frame_policy, f"frames:{sid}", waker=waker,
                                on_drop=lambda _item, s=stats: s.drop("frame_ring_full"))
            src.bind(self.bus, packets, stats)
            hw, hw_device = (hwaccel or {}).get(sid, (None, None))
            self.decoders.append(Decoder(sid, self.bus, packets, frames, stats, threads=decoder_threads,
                                         max_fps=(max_fps or {}).get(sid), hwaccel=hw, hwaccel_device=hw_device))
            frame_rings[sid] = frames
        results = self._ring(sizes["results"], "block", "results")
        self.inference = InferenceStage(f"inference:{model.name}", self.bus, model, frame_rings, results, waker,
                                        max_batch_size, max_wait_ms, infer_intervals)
        self.sink_stages: list[SinkStage] = []
        sink_rings = []
        ids = list(self.streams)
        for sink in self.sinks:
            ring = self._ring(sizes["sink"], "block" if sink.lossless else "drop_oldest", f"sink:{sink.name}")
            sink_rings.append(ring)
            self.sink_stages.append(SinkStage(sink, self.bus, ring, ids))
        self.tracker = TrackerStage(self.bus, results, sink_rings, self.streams, tracker_factory, carry_masks)
        self.metrics = PipelineMetrics(self)
        self.tracker.observe = self.metrics.observe
        self.metrics_port, self.metrics_host = metrics_port, metrics_host
        self.errors: list[StageError] = []
        self._started = False
        self._finished = False
        self._stop_requested = 0
        self._t_start = 0.0
        self._t_end = 0.0

    def _ring(self, capacity: int, policy: str, name: str, **kw: Any) -> RingBuffer:
        ring = RingBuffer(capacity, policy, name, **kw)  # type: ignore[arg-type]
        self.rings.append(ring)
        return ring

    # -- construction from config ---------------------------------------------------------
    @classmethod
    def from_config(cls, config: PipelineConfig | dict | str | Path, overrides: list[str] | None = None) -> Pipeline:
        """Build from a PipelineConfig, a dict or a YAML file; the model loads and warms up
        here and every source is opened, so bad input fails before any thread starts."""
        from pipeline.app.factory import build_model
        from pipeline.track.factory import tracker_factory
        from sinks.factory import build_sink
        from sources.factory import build_source

        if isinstance(config, (str, Path)):
            cfg = load_config(config, overrides)
        elif isinstance(config, dict):
            cfg = load_config_dict(config)
        else:
            cfg = config
        sources = [build_source(s.id, s.source) for s in cfg.streams]
        for src in sources:
            src.probe()
        model = build_model(cfg.model, cfg.batching.max_batch_size)
        sinks = [build_sink(s) for s in cfg.sinks]
        policies = {s.id: s.ring_policy for s in cfg.streams if s.ring_policy}
        intervals = {s.id: s.infer_interval for s in cfg.streams}
        rates = {s.id: s.max_fps for s in cfg.streams if s.max_fps}
        hwaccel = {s.id: (s.hwaccel, s.hwaccel_device) for s in cfg.streams if s.hwaccel}
        return cls(sources, model, sinks, cfg.batching.max_batch_size, cfg.batching.max_wait_ms,
                   cfg.rings.model_dump(), policies, cfg.decoder_threads, cfg.name,
                   tracker_factory(cfg.tracker), intervals, cfg.tracker.carry_masks if cfg.tracker else True, rates,
                   cfg.metrics.port if cfg.metrics else None, cfg.metrics.host if cfg.metrics else "127.0.0.1", hwaccel)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def stages(self) -> list[Stage]:
        return [*self.sources, *self.decoders, self.inference, self.tracker, *self.sink_stages]

    def start(self) -> None:
        if self._started:
            raise RuntimeError("pipeline already started")
        self._started = True
        opened = []
        try:
            for sink in self.sinks:
                sink.open()
                opened.append(sink)
        except BaseException:
            for sink in opened:
                sink.close()
            raise
        if self.metrics_port is not None:
            try:
                self.metrics_port = self.metrics.serve(self.metrics_port, self.metrics_host)
            except BaseException:
                for sink in opened:
                    sink.close()
                raise
        self._t_start = time.perf_counter()
        # Downstream first, so nothing waits on a stage that is not running yet.
        for stage in reversed(self.stages):
            stage.start()
        log.info("pipeline %s started: %d stream(s), model %s", self.name, len(self.sources), self.model.name)

    def stop(self) -> None:
        """Graceful: sources stop reading; what is in flight finishes; sinks flush."""
        self._stop_requested += 1
        for src in self.sources:
            src.stop()

    def abort(self) -> None:
        """Stop every stage now and wake every waiter."""
        for stage in self.stages:
            stage.stop()
        for ring in self.rings:
            ring.close()

    def _handle(self, msg: BusMessage) -> None:
        if msg.kind == "sink_failed" and msg.error is not None:
            failing = [s for s in self.sink_stages if s.errors]
            if len(failing) == len(self.sink_stages):
                log.error("every sink is failing: stopping")
                self.errors.append(msg.error)
                self.abort()
            else:
                log.error("%s (the other sinks carry on)", msg.error)
            return
        if msg.kind != "error" or msg.error is None:
            return
        self.errors.append(msg.error)
        stage = next((s for s in self.stages if s.name == msg.stage), None)
        if stage is not None and stage.per_stream:
            if msg.stream in self.streams:
                self.streams[msg.stream].set_state("failed")
                self.streams[msg.stream].error = str(msg.error)
            log.error("stream %s ended by an error; other streams continue", msg.stream)
        else:
            self.abort()

    def _done(self) -> bool:
        tail = self.sink_stages or [self.tracker]
        return all(not s.alive for s in tail) and self.tracker.join(0)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.abort()  # everything downstream is done; release any producer still blocked
        stuck = [s.name for s in self.stages if not s.join(JOIN_TIMEOUT_S)]
        self.metrics.close()
        while (msg := self.bus.poll(0)) is not None:
            if msg.kind == "error" and msg.error is not None and msg.error not in self.errors:
                self.errors.append(msg.error)
        self._t_end = time.perf_counter()
        if stuck:
            log.error("threads still running after stop: %s", stuck)
        log.info("pipeline %s finished in %.2f s", self.name, self._t_end - self._t_start)

    def _supervise_until_done(self) -> None:
        """Read the bus until the last stage has finished."""
        while not self._done():
            msg = self.bus.poll(0.05)
            if msg is not None:
                self._handle(msg)

    def run(self, handle_signals: bool = True) -> dict[str, Any]:
        """Run to the end of every stream; returns the summary, raises the first error."""
        with self._signal_handlers(handle_signals):
            if not self._started:
                self.start()
            try:
                self._supervise_until_done()
            finally:
                self._finish()
        self._raise_errors()
        return self.summary()

    def __iter__(self) -> Iterator[Result]:
        """Results as they come (all streams interleaved, each in order)."""
        ring: RingBuffer = self._ring(self.ring_sizes["sink"], "block", "iterator")
        self.tracker.outputs.append(ring)
        self.start()
        open_streams = set(self.streams)
        try:
            while open_streams:
                while (msg := self.bus.poll(0)) is not None:
                    self._handle(msg)
                try:
                    item = ring.get(timeout=0.05)
                except RingEmpty:
                    continue
                except RingClosed:
                    break
                if isinstance(item, EndOfStream):
                    open_streams.discard(item.stream_id)
                    continue
                yield item
            self._supervise_until_done()
        finally:
            self._finish()
        self._raise_errors()

    def _raise_errors(self) -> None:
        if self.errors:
            raise self.errors[0]

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started and not self._finished:
            self.stop()
            self._finish()

    @contextlib.contextmanager
    def _signal_handlers(self, enabled: bool):
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: object) -> None:
            if self._stop_requested == 0:
                log.warning("%s: stopping: sources stop, frames in flight finish (again to abort)",
                            signal.Signals(signum).name)
                self.stop()
            else:
                log.warning("%s again: aborting", signal.Signals(signum).name)
                self.abort()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    # -- reporting ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        end = self._t_end or time.perf_counter()
        wall = max(1e-9, end - self._t_start) if self._t_start else 0.0
        results = sum(s.results for s in self.streams.values())
        drops: dict[str, int] = {}
        for s in self.streams.values():
            for k, v in s.drops_snapshot().items():
                drops[k] = drops.get(k, 0) + v
        return {
            "pipeline": self.name,
            "model": self.model.name,
            "providers": self.model.backend.active_providers,
            "requested_providers": self.model.backend.requested_providers,
            "provider_fallback": self.model.backend.fell_back,
            "postprocess_device": self.model.postprocess_device,
            "wall_s": round(wall, 3),
            "frames": sum(s.frames for s in self.streams.values()),
            "results": results,
            "detections": sum(s.detections for s in self.streams.values()),
            "fps": round(results / wall, 2) if wall else 0.0,
            "drops": drops,
            "latency_ms": self.metrics.latency_summary(),
            "batches": self.inference.batches,
            "streams": {sid: s.summary() for sid, s in self.streams.items()},
            "stages": {st.name: st.stats() for st in self.stages},
            "rings": {r.name: {"capacity": r.capacity, "policy": r.policy, "puts": r.stats.puts, "dropped": r.stats.dropped,
                               "max_depth": r.stats.max_depth} for r in self.rings},
            "errors": [str(e) for e in self.errors],
        }
