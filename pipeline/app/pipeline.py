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

Streams change while it runs, from any thread: ``add_stream``, ``remove_stream``,
``pause_stream``, ``resume_stream``, ``pause``, ``resume`` (see :mod:`pipeline.app.streams`).
A pipeline ends when all its streams have; with ``keep_alive=True`` (a service) it runs on
without streams, waiting for new ones, until ``stop()`` or a signal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.app import report, shutdown, supervise
from pipeline.app.config import MetricsConfig, PipelineConfig, RingsConfig, StreamConfig, load_config, load_config_dict
from pipeline.app.observability import PipelineMetrics
from pipeline.app.outputs import check_outputs
from pipeline.app.streams import StreamControl
from pipeline.core.errors import StageError
from pipeline.core.items import EndOfStream
from pipeline.core.options import StreamOptions
from pipeline.core.ring import RingBuffer, RingClosed, RingEmpty, RingPolicy
from pipeline.core.roster import Roster
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

JOIN_TIMEOUT_S = supervise.JOIN_TIMEOUT_S
ITERATOR = "iterator"  # the roster's name for the consumer of results()


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
        keep_alive: bool = False,
        config: PipelineConfig | None = None,
    ) -> None:
        """``streams`` holds each stream's options by id (ring policy, infer_interval,
        max_fps, hwaccel); streams without an entry get the defaults. ``keep_alive``: run
        on when every stream has ended (streams may be none at first), until stopped.
        ``config``: what it was built from (streams added later have their outputs checked)."""
        if not sources and not keep_alive:
            raise ValueError("a pipeline needs at least one source (or keep_alive=True)")
        check_task_trackable(getattr(model, "task", None), tracker, model.name)
        self.name, self.model, self.sinks, self.config = name, model, list(sinks), config
        self.rings_config = rings or RingsConfig()
        self.metrics_config = metrics
        self.metrics_port = metrics.port if metrics else None
        self.decoder_threads = decoder_threads
        self.bus = Bus()
        # Replaced, never changed in place, when streams join or leave (StreamControl): a
        # reader iterating one (the metrics, a summary) is never disturbed.
        self.streams: dict[str, StreamStats] = {}
        self.sources: list[SourceStage] = []
        self.decoders: list[Decoder] = []
        self.rings: list[RingBuffer] = []
        self.waker = threading.Event()  # set by every frame ring: the batcher watches them all
        self.control = StreamControl(self)
        ids = [src.stream_id for src in sources]
        if len(set(ids)) != len(ids):
            raise ValueError(f"two sources use stream id {next(i for i in ids if ids.count(i) > 1)!r}")
        self.roster = Roster(ids, keep_alive=keep_alive)
        parts = [self.control.build(src, (streams or {}).get(src.stream_id)) for src in sources]
        results = self._ring(self.rings_config.results, "block", "results")
        intervals = {p.stats.stream_id: p.options.infer_interval for p in parts}
        self.inference = InferenceStage(self.bus, model, {p.stats.stream_id: p.frames for p in parts}, results,
                                        self.waker, batching, intervals, roster=self.roster)
        self.sink_stages = [self._add_sink(sink) for sink in self.sinks]
        self.metrics = PipelineMetrics(self)
        self.tracker = TrackerStage(self.bus, results, [st.inp for st in self.sink_stages], self.streams, tracker,
                                    on_result=self.metrics.observe, roster=self.roster)
        self._init_lifecycle()

    def _init_lifecycle(self) -> None:
        """What a run records of itself: errors, problems, how it was stopped, its clock."""
        self.iterating_thread: int | None = None
        self.errors: list[StageError] = []
        # What left the run incomplete without stopping it (a truncated input, a sink that
        # failed frames, frames lost to an abort): one line each, in the summary's errors.
        self.problems: list[str] = []
        self._started = False
        self._threads_started = False
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

    def _add_sink(self, sink: Sink) -> SinkStage:
        ring = self._ring(self.rings_config.sink, "block" if sink.lossless else "drop_oldest", f"sink:{sink.name}")
        return SinkStage(sink, self.bus, ring, list(self.streams), roster=self.roster)

    def _ring(self, capacity: int, policy: RingPolicy, name: str, **kw: Any) -> RingBuffer:
        ring: RingBuffer = RingBuffer(capacity, policy, name, **kw)
        self.rings = [*self.rings, ring]
        return ring

    # -- streams while it runs (pipeline.app.streams) -------------------------------------------
    def add_stream(self, config: StreamConfig | dict[str, Any]) -> str:
        """Add a stream (a ``streams:`` entry: ``id``, ``source``, options), before or while
        it runs, from any thread; returns its id. Raises ConfigError (a bad config, or an
        output it would clobber), SourceError (its input cannot be opened; a camera that is
        offline is retried in its own thread instead), StreamExistsError, or
        PipelineFinishedError; the running streams are never disturbed."""
        return self.control.add(config)

    def remove_stream(self, stream_id: str, *, drain: bool = True, wait: bool = True) -> dict[str, Any] | None:
        """Remove a stream. ``drain=True``: it stops reading and what is queued finishes (every
        frame read becomes a result); ``drain=False``: it stops now and what waits before the
        model is dropped (``removed``). Its end (an EndOfStream, reason ``removed``) follows
        its last result. With ``wait`` it returns once its threads are joined and its state
        released: its final summary (state ``removed``); on a pipeline thread (a callback)
        or the thread iterating ``results()`` it cannot wait, and returns None (the stream is
        released as soon as its end has passed). Raises UnknownStreamError, or
        PipelineFinishedError."""
        return self.control.remove(stream_id, drain, wait)

    def pause_stream(self, stream_id: str) -> None:
        """Pause one stream: a file is not read; a live source reads and drops (``paused``)."""
        self.control.pause(stream_id, True)

    def resume_stream(self, stream_id: str) -> None:
        self.control.pause(stream_id, False)

    def pause(self) -> None:
        """Pause every stream (and those added while paused) until ``resume()``."""
        self.control.pause(None, True)

    def resume(self) -> None:
        """Resume the pipeline; streams paused one by one stay paused."""
        self.control.pause(None, False)

    @property
    def started(self) -> bool:
        """Its threads have started (a stream added from now on starts its own)."""
        return self._threads_started

    @property
    def finished(self) -> bool:
        return self._finished

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
                   name=cfg.name, keep_alive=cfg.keep_alive, config=cfg)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def stages(self) -> list[Stage]:
        return [*self.sources, *self.decoders, self.inference, self.tracker, *self.sink_stages]

    def start(self) -> None:
        if self._started:
            raise RuntimeError("pipeline already started")
        self._started = True
        supervise.open_outputs(self)
        with self.control.lock:  # a stream joining now starts its threads itself, after these
            self._t_start = time.perf_counter()
            # Downstream first, so nothing waits on a stage that is not running yet.
            for stage in reversed(self.stages):
                stage.start()
            self._threads_started = True
        log.info("pipeline %s started: %d stream(s), model %s", self.name, len(self.sources), self.model.name)

    def stop(self) -> None:
        """Graceful: sources stop reading; what is in flight finishes; sinks flush. Streams
        not ended by then end ``stopped``; ``run()`` aborts if this takes ``drain_timeout_s``."""
        if self._ended_before_stop is None:
            self._ended_before_stop = shutdown.ended_streams(self)
        if self._stop_requested == 0:
            self._drain_deadline = time.monotonic() + self.drain_timeout_s
        self._stop_requested += 1
        with self.control.lock:  # a stream joining now is either stopped here or refused
            self.roster.close()  # no stream joins a stopping pipeline; keep_alive ends
            sources = list(self.sources)
        for src in sources:
            src.stop()

    def abort(self) -> None:
        """Stop every stage now and wake every waiter; what was in flight is counted as
        dropped (``aborted``) and reported in ``problems`` when the run finishes."""
        if self._ended_before_stop is None:
            self._ended_before_stop = shutdown.ended_streams(self)
        self._aborted = True
        self.roster.close()
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
        supervise.handle(self, msg)

    def _finish(self) -> None:
        supervise.finish(self)

    def _supervise_until_done(self) -> None:
        supervise.until_done(self)

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
        return self.results()  # type: ignore[return-value]  # events=False: results only

    def results(self, events: bool = False) -> Iterator[Result | EndOfStream]:
        """Results as they come (all streams interleaved, each in order); with ``events``
        also each stream's end, after its last result (``reason``: eos, stopped, error,
        removed). Starts the pipeline; runs it until it finishes."""
        ring: RingBuffer = self._ring(self.rings_config.sink, "block", "iterator")
        self.tracker.outputs.append(ring)
        self.roster.join(ITERATOR)
        self.start()
        self.iterating_thread = threading.get_ident()  # remove_stream() from it does not wait
        try:
            while not self.roster.done(ITERATOR):
                while (msg := self.bus.poll(0)) is not None:
                    self._handle(msg)
                self.control.release_ready()
                try:
                    item = ring.get(timeout=0.05)
                except RingEmpty:
                    continue
                except RingClosed:
                    break
                if isinstance(item, EndOfStream):
                    self.roster.end(ITERATOR, item.stream_id)
                    if events:
                        yield item
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
        """The run so far: totals, per stream (removed ones too), per stage, per ring, errors."""
        return report.summary(self)
