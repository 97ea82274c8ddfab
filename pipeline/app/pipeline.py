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
and close (a graceful drain, bounded by ``drain_timeout_s``); a second signal aborts and
counts what it lost (see :mod:`pipeline.app.shutdown`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.app import shutdown
from pipeline.app.config import MetricsConfig, PipelineConfig, RingsConfig, load_config, load_config_dict
from pipeline.app.observability import PipelineMetrics
from pipeline.app.outputs import check_outputs
from pipeline.core.errors import StageError
from pipeline.core.items import EndOfStream
from pipeline.core.options import StreamOptions
from pipeline.core.redact import redact_obj
from pipeline.core.ring import RingBuffer, RingClosed, RingEmpty, RingPolicy
from pipeline.core.stage import Bus, BusMessage, Stage
from pipeline.core.stats import StreamStats
from pipeline.infer.config import BatchingConfig
from pipeline.infer.model import Model
from pipeline.infer.stage import InferenceStage
from pipeline.track.config import TrackerConfig
from pipeline.track.factory import check_task_trackable
from pipeline.track.stage import TrackerStage
from pipeline.vision.result import Result
from sinks.base import Sink, SinkStage
from sinks.factory import build_sink
from sources.base import Source
from sources.decoder import Decoder
from sources.factory import build_source
from sources.stage import SourceStage

log = logging.getLogger("vidpipe.pipeline")

JOIN_TIMEOUT_S = 3.0


class Pipeline:
    """Owns the stages and rings of one model's pipeline (see the module docstring)."""

    def __init__(
        self,
        sources: Sequence[Source],
        model: Model,
        sinks: Sequence[Sink] = (),
        *,
        streams: Mapping[str, StreamOptions] | None = None,
        batching: BatchingConfig | None = None,
        tracker: TrackerConfig | None = None,
        rings: RingsConfig | None = None,
        metrics: MetricsConfig | None = None,
        decoder_threads: int = 0,
        name: str = "vidpipe",
    ) -> None:
        """``streams`` holds each stream's options by id (ring policy, infer_interval,
        max_fps, hwaccel); streams without an entry get the defaults."""
        if not sources:
            raise ValueError("a pipeline needs at least one source")
        check_task_trackable(getattr(model, "task", None), tracker, model.name)
        self.name, self.model, self.sinks = name, model, list(sinks)
        self.rings_config = rings or RingsConfig()
        self.metrics_config = metrics
        self.metrics_port = metrics.port if metrics else None
        self.bus = Bus()
        self.streams: dict[str, StreamStats] = {}
        self.sources: list[SourceStage] = []
        self.decoders: list[Decoder] = []
        self.rings: list[RingBuffer] = []
        waker = threading.Event()  # set by every frame ring: the batcher watches them all
        frame_rings = {src.stream_id: self._add_stream(src, (streams or {}).get(src.stream_id), decoder_threads, waker)
                       for src in sources}
        results = self._ring(self.rings_config.results, "block", "results")
        intervals = {sid: opts.infer_interval for sid, opts in (streams or {}).items()}
        self.inference = InferenceStage(self.bus, model, frame_rings, results, waker, batching, intervals)
        self.sink_stages = [self._add_sink(sink) for sink in self.sinks]
        self.metrics = PipelineMetrics(self)
        self.tracker = TrackerStage(self.bus, results, [st.inp for st in self.sink_stages], self.streams, tracker,
                                    on_result=self.metrics.observe)
        self.errors: list[StageError] = []
        # What left the run incomplete without stopping it (a truncated input, a sink that
        # failed frames, frames lost to an abort): one line each, in the summary's errors.
        self.problems: list[str] = []
        self._started = False
        self._finished = False
        self._stop_requested = 0
        self.stopped_by: int | None = None  # the signal that stopped run() (vidpipe exits 128 + it)
        self.drain_timeout_s = shutdown.DRAIN_TIMEOUT_S
        self._drain_deadline: float | None = None
        self._ended_before_stop: set[str] | None = None  # set by the first stop() or abort()
        self._aborted = False
        self._abort_deadline: float | None = None
        self._t_start = 0.0
        self._t_end = 0.0

    def _add_stream(self, source: Source, options: StreamOptions | None, decoder_threads: int,
                    waker: threading.Event) -> RingBuffer:
        """The source and decoder stages of one stream, and its rings; returns its frame ring."""
        sid = source.stream_id
        if sid in self.streams:
            raise ValueError(f"two sources use stream id {sid!r}")
        options = options or StreamOptions()
        stats = self.streams[sid] = StreamStats(sid)
        # Live packets are never dropped by the ring: the source stage skips whole GOPs instead.
        packets = self._ring(self.rings_config.packets, "drop_newest" if source.live else "block", f"packets:{sid}")
        frame_policy = options.ring_policy or ("drop_oldest" if source.live else "block")
        # The ring counts what it drops, once: no stage counts ring drops itself.
        frames = self._ring(self.rings_config.frames, frame_policy, f"frames:{sid}", waker=waker,
                            on_drop=lambda _item: stats.drop("frame_ring_full"))
        self.sources.append(SourceStage(source, self.bus, packets, stats))
        self.decoders.append(Decoder(sid, self.bus, packets, frames, stats, options, threads=decoder_threads))
        return frames

    def _add_sink(self, sink: Sink) -> SinkStage:
        ring = self._ring(self.rings_config.sink, "block" if sink.lossless else "drop_oldest", f"sink:{sink.name}")
        return SinkStage(sink, self.bus, ring, list(self.streams))

    def _ring(self, capacity: int, policy: RingPolicy, name: str, **kw: Any) -> RingBuffer:
        ring: RingBuffer = RingBuffer(capacity, policy, name, **kw)
        self.rings.append(ring)
        return ring

    # -- construction from config ---------------------------------------------------------
    @classmethod
    def from_config(cls, config: PipelineConfig | dict | str | Path, overrides: list[str] | None = None) -> Pipeline:
        """Build from a PipelineConfig, a dict or a YAML file; the model loads and warms up
        here and every source is opened, so bad input fails before any thread starts."""
        if isinstance(config, (str, Path)):
            cfg = load_config(config, overrides)
        elif isinstance(config, dict):
            cfg = load_config_dict(config)
        else:
            cfg = config
        check_outputs(cfg)  # before anything opens: an output never replaces an input or another output
        sources = [build_source(s.id, s.source) for s in cfg.streams]
        for src in sources:
            src.open()
        model = Model.load(cfg.model, max_batch_size=cfg.batching.max_batch_size)
        sinks = [build_sink(s) for s in cfg.sinks]
        return cls(sources, model, sinks, streams={s.id: s for s in cfg.streams}, batching=cfg.batching,
                   tracker=cfg.tracker, rings=cfg.rings, metrics=cfg.metrics, decoder_threads=cfg.decoder_threads,
                   name=cfg.name)

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
        if self.metrics_config is not None:
            try:
                self.metrics_port = self.metrics.serve(self.metrics_config.port, self.metrics_config.host)
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
        """Graceful: sources stop reading; what is in flight finishes; sinks flush. Streams
        not ended by then end ``stopped``; ``run()`` aborts if this takes ``drain_timeout_s``."""
        if self._ended_before_stop is None:
            self._ended_before_stop = shutdown.ended_streams(self)
        if self._stop_requested == 0:
            self._drain_deadline = time.monotonic() + self.drain_timeout_s
        self._stop_requested += 1
        for src in self.sources:
            src.stop()

    def abort(self) -> None:
        """Stop every stage now and wake every waiter; what was in flight is counted as
        dropped (``aborted``) and reported in ``problems`` when the run finishes."""
        if self._ended_before_stop is None:
            self._ended_before_stop = shutdown.ended_streams(self)
        self._aborted = True
        if self._abort_deadline is None:
            self._abort_deadline = time.monotonic() + JOIN_TIMEOUT_S
        self._close_all()
        shutdown.discard_sink_rings(self)

    def _close_all(self) -> None:
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
        tail: list[Stage] = [*self.sink_stages] or [self.tracker]
        return all(not s.alive for s in tail) and self.tracker.join(0)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._close_all()  # everything downstream is done; release any producer still blocked
        stuck = [s.name for s in self.stages if not s.join(JOIN_TIMEOUT_S)]
        if self._aborted:
            shutdown.count_aborted(self)
        if self._ended_before_stop is not None:
            shutdown.mark_stopped(self, self._ended_before_stop)
        self.metrics.close()
        while (msg := self.bus.poll(0)) is not None:
            if msg.kind == "error" and msg.error is not None and msg.error not in self.errors:
                self.errors.append(msg.error)
        self._t_end = time.perf_counter()
        # What the run did not deliver: truncated inputs, results sinks failed or dropped.
        self.problems.extend(p for st in self.streams.values() for p in st.problems)
        self.problems.extend(shutdown.sink_drop_problems(self))
        self.problems.extend(p for p in (st.problem() for st in self.sink_stages) if p)
        if stuck:
            log.error("threads still running after stop: %s", stuck)
        log.info("pipeline %s finished in %.2f s", self.name, self._t_end - self._t_start)

    def _supervise_until_done(self) -> None:
        """Read the bus until the last stage has finished. A stop is bounded by
        ``drain_timeout_s`` (then it aborts), an abort by JOIN_TIMEOUT_S (a stage stuck in a
        call that never returns is left behind, and named by ``_finish``)."""
        while not self._done():
            now = time.monotonic()
            if self._abort_deadline is not None and now > self._abort_deadline:
                return
            if self._drain_deadline is not None and not self._aborted and now > self._drain_deadline:
                log.error("the graceful stop took over %g s: aborting", self.drain_timeout_s)
                self.abort()
            msg = self.bus.poll(0.05)
            if msg is not None:
                self._handle(msg)

    def run(self, handle_signals: bool = True) -> dict[str, Any]:
        """Run to the end of every stream; returns the summary, raises the first error."""
        with shutdown.signal_handlers(self, handle_signals):
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
        ring: RingBuffer = self._ring(self.rings_config.sink, "block", "iterator")
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

    # -- reporting ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        end = self._t_end or time.perf_counter()
        wall = max(1e-9, end - self._t_start) if self._t_start else 0.0
        results = sum(s.results for s in self.streams.values())
        drops: dict[str, int] = {}
        for s in self.streams.values():
            for k, v in s.drops_snapshot().items():
                drops[k] = drops.get(k, 0) + v
        return redact_obj({  # type: ignore[return-value]  # errors may quote a URL
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
            "errors": [str(e) for e in self.errors] + self.problems,
        })
