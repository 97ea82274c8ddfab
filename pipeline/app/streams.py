"""Streams that join, leave, pause and resume a pipeline while it runs.

- **add** (``Pipeline.add_stream``): the stream's config is validated, its outputs checked
  (a pipeline built from a config), its source opened, then its source and decoder stages
  and their two rings are made, it goes on the roster of every shared stage at once
  (:mod:`pipeline.core.roster`), its frame ring joins the batcher's inputs and its counters
  the tracker's, and (when running) its threads start. Other streams never wait for it.
- **remove** (``Pipeline.remove_stream``): ``drain=True`` (the default) stops reading and
  lets what is queued finish: every frame already read becomes a result. ``drain=False``
  aborts: what waits before the model is discarded (counted as drops ``removed``). Either
  way an :class:`EndOfStream` with reason ``removed`` follows the stream's last result
  through every ring (sinks get ``end_stream``; ``Pipeline.results(events=True)`` yields
  it), and once it has passed every stage the stream is *released*: its threads joined,
  its source closed (sockets, containers), its tracker state, rings, counters and metrics
  dropped. The summary keeps a final line for it with state ``removed`` (the last
  ``REMOVED_KEPT`` removed streams), and the run's totals keep counting what it did.
  A stream that ended by itself stays listed (``ended``) until removed.
- **pause** / **resume**, per stream or the whole pipeline: a paused file is not read; a
  paused live source keeps reading and drops (see :mod:`sources.stage`). The two pauses
  are separate: a stream runs when neither holds it (one paused on its own stays paused
  when the pipeline resumes; one resumed while the pipeline is paused waits for it), and
  one added while the pipeline is paused starts paused.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.app.config import StreamConfig, load_stream_config
from pipeline.app.outputs import check_added_stream
from pipeline.app.shutdown import drain_ring
from pipeline.core.errors import ConfigError, PipelineFinishedError, SourceError, StreamError, StreamExistsError, UnknownStreamError
from pipeline.core.items import EndOfStream, Frame, Packet
from pipeline.core.options import StreamOptions
from pipeline.core.ring import RingBuffer, RingClosed
from pipeline.core.roster import RosterClosed
from pipeline.core.stats import StreamStats
from sources.base import Source
from sources.decoder import Decoder
from sources.factory import build_source
from sources.stage import SourceStage

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.pipeline import Pipeline

log = logging.getLogger("vidpipe.pipeline")

REMOVED_KEPT = 100  # final summaries of removed streams kept (a service adds and removes without end)
RELEASE_JOIN_S = 10.0  # a live source may sit in a connect or read for its open/stall timeout


@dataclass
class StreamParts:
    """What one stream owns: its source and decoder stages, their rings, its counters."""

    source: SourceStage
    decoder: Decoder
    packets: RingBuffer
    frames: RingBuffer
    stats: StreamStats
    options: StreamOptions
    paused: bool = False  # paused on its own (the whole pipeline's pause is separate)


class StreamControl:
    """The streams of one pipeline and the operations that change them while it runs."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.p = pipeline
        self.lock = threading.RLock()
        self.parts: dict[str, StreamParts] = {}
        self.removing: set[str] = set()  # removed, waiting for their end of stream to pass
        self.removed: OrderedDict[str, dict[str, Any]] = OrderedDict()  # final summaries
        self.removed_totals: Counter[str] = Counter()  # packets, frames, results, detections
        self.removed_drops: Counter[str] = Counter()
        self.problems: list[str] = []  # of removed streams (a truncated file), for the run's
        self.paused = False  # the whole pipeline

    # -- building -------------------------------------------------------------------------
    def build(self, source: Source, options: StreamOptions | None) -> StreamParts:
        """The stages and rings of one stream, registered in the pipeline (not started)."""
        p, sid = self.p, source.stream_id
        options = options or StreamOptions()
        stats = StreamStats(sid)
        # Live packets are never dropped by the ring: the source stage skips whole GOPs instead.
        packets: RingBuffer = RingBuffer(p.rings_config.packets, "drop_newest" if source.live else "block",
                                         f"packets:{sid}")
        # The ring counts what it drops, once: no stage counts ring drops itself.
        policy = options.ring_policy or ("drop_oldest" if source.live else "block")
        size = p.rings_config.live_frames if policy == "drop_oldest" and source.live else p.rings_config.frames
        frames: RingBuffer = RingBuffer(size, policy,
                                        f"frames:{sid}", waker=p.waker, on_drop=lambda _item: stats.drop("frame_ring_full"))
        parts = StreamParts(SourceStage(source, p.bus, packets, stats),
                            Decoder(sid, p.bus, packets, frames, stats, options, threads=p.decoder_threads, live=source.live),
                            packets, frames, stats, options)
        with self.lock:  # new lists and dicts: a reader iterating the old ones is never disturbed
            self.parts = {**self.parts, sid: parts}
            p.streams = {**p.streams, sid: stats}
            p.sources = [*p.sources, parts.source]
            p.decoders = [*p.decoders, parts.decoder]
            p.rings = [*p.rings, packets, frames]
        return parts

    def _unregister(self, sid: str, parts: StreamParts) -> None:
        p = self.p
        with self.lock:
            self.parts = {k: v for k, v in self.parts.items() if k != sid}
            p.streams = {k: v for k, v in p.streams.items() if k != sid}
            p.sources = [s for s in p.sources if s is not parts.source]
            p.decoders = [d for d in p.decoders if d is not parts.decoder]
            p.rings = [r for r in p.rings if r is not parts.packets and r is not parts.frames]

    # -- checks ---------------------------------------------------------------------------
    def _open_for(self, what: str) -> None:
        if self.p.finished or self.p.roster.closed:
            raise PipelineFinishedError(f"pipeline {self.p.name} {'has finished' if self.p.finished else 'is finishing'}: "
                                        f"cannot {what}")

    def get(self, stream_id: str, what: str) -> StreamParts:
        """The stream's parts; UnknownStreamError naming it (and the streams there are)."""
        self._open_for(what)
        parts = self.parts.get(stream_id)
        if parts is None:
            have = ", ".join(repr(s) for s in self.parts) or "none"
            raise UnknownStreamError(f"cannot {what}: no stream {stream_id!r} in pipeline {self.p.name} (streams: {have})")
        return parts

    def _validate(self, config: StreamConfig | dict[str, Any]) -> StreamConfig:
        cfg = load_stream_config(config)
        with self.lock:
            self._open_for(f"add stream {cfg.id!r}")
            if cfg.id in self.parts:
                raise StreamExistsError(f"cannot add stream {cfg.id!r}: pipeline {self.p.name} has a stream of that id")
        if cfg.infer_interval > 1 and (self.p.tracker.config is None or self.p.tracker.config.type == "none"):
            raise ConfigError(f"config error in stream {cfg.id!r} at infer_interval: > 1 needs the pipeline's tracker")
        if self.p.config is not None:
            check_added_stream(self.p.config, cfg, list(self.parts))
        return cfg

    # -- add ------------------------------------------------------------------------------
    def add(self, config: StreamConfig | dict[str, Any]) -> str:
        """Validate, open and start a stream (see the module docstring); returns its id."""
        cfg = self._validate(config)
        source = build_source(cfg.id, cfg.source)
        try:
            source.open()
        except SourceError as exc:
            msg = str(exc)
            raise SourceError(msg if repr(cfg.id) in msg else f"stream {cfg.id!r}: {msg}") from None
        try:
            self._join(source, cfg)
        except BaseException:
            source.close()
            raise
        log.info("stream %s added (%s)", cfg.id, source.describe())
        return cfg.id

    def _join(self, source: Source, cfg: StreamConfig) -> None:
        p, sid = self.p, cfg.id
        with self.lock:
            self._open_for(f"add stream {sid!r}")
            if sid in self.parts:  # another thread added it since _validate
                raise StreamExistsError(f"cannot add stream {sid!r}: pipeline {p.name} has a stream of that id")
            try:
                p.roster.add(sid)  # every shared stage expects it from now on, atomically
            except RosterClosed:
                raise PipelineFinishedError(f"pipeline {p.name} is finishing: cannot add stream {sid!r}") from None
            parts = self.build(source, cfg)
            p.tracker.add_stream(sid, parts.stats)
            for stage in p.sink_stages:
                stage.add_stream(sid)
            p.inference.add_input(sid, parts.frames, cfg.infer_interval)
            if self.paused:
                parts.source.pause()
            if p.started:
                parts.decoder.start()  # downstream first
                parts.source.start()

    # -- pause ----------------------------------------------------------------------------
    def pause(self, stream_id: str | None, paused: bool) -> None:
        """Pause or resume one stream (``stream_id``) or the whole pipeline (None)."""
        with self.lock:
            if stream_id is not None:
                parts = self.get(stream_id, f"{'pause' if paused else 'resume'} stream {stream_id!r}")
                parts.paused = paused
                targets = [parts]
            else:
                self._open_for("pause the pipeline" if paused else "resume the pipeline")
                self.paused = paused
                targets = list(self.parts.values())
            for parts in targets:
                if paused or not (parts.paused or self.paused):
                    (parts.source.pause if paused else parts.source.resume)()

    # -- remove ---------------------------------------------------------------------------
    def remove(self, stream_id: str, drain: bool, wait: bool) -> dict[str, Any] | None:
        """Start removing a stream; with ``wait`` (not on a pipeline thread, which must go on
        to pass the end of stream) wait until it is released and return its final summary."""
        p = self.p
        with self.lock:
            parts = self.get(stream_id, f"remove stream {stream_id!r}")
            if stream_id in self.removing:
                raise StreamError(f"cannot remove stream {stream_id!r}: it is being removed")
            self.removing.add(stream_id)
            if not p.started:  # nothing ran (and start() waits for this lock): off every stage now
                p.roster.discard(stream_id)
                return self.release(stream_id)
        parts.source.stop_reason = "removed"
        if drain:
            parts.source.stop()
        else:
            self._abort(parts)
        gone = p.roster.gone(stream_id)
        if gone is None or gone.is_set():  # it had ended already
            return self.release(stream_id)
        if not wait or self._passes_ends():
            return None  # released by the supervisor (run() or the iterator) once its end has passed
        if not gone.wait(p.drain_timeout_s if drain else RELEASE_JOIN_S):
            if not drain:
                raise StreamError(f"stream {stream_id!r}: its end did not pass the pipeline in {RELEASE_JOIN_S:g} s")
            log.error("stream %s: draining took over %g s: aborting it", stream_id, p.drain_timeout_s)
            self._abort(parts)
            gone.wait(RELEASE_JOIN_S)
        return self.release(stream_id)

    def _passes_ends(self) -> bool:
        """Whether this thread must go on for a stream's end to pass (a stage's, e.g. in a
        callback, or the one iterating ``results()``): it cannot wait for it."""
        return threading.current_thread().name.startswith("vidpipe:") or threading.get_ident() == self.p.iterating_thread

    def snapshot(self) -> tuple[dict[str, dict[str, Any]], Counter[str], Counter[str]]:
        """The removed streams' final summaries, totals and drops, read together."""
        with self.lock:
            return dict(self.removed), Counter(self.removed_totals), Counter(self.removed_drops)

    def _abort(self, parts: StreamParts) -> None:
        """Stop the stream's stages now, discard what waits before the model (counted as
        drops ``removed``) and send its end of stream to the batcher."""
        sid = parts.stats.stream_id
        parts.source.stop(now=True)
        parts.decoder.stop(now=True)
        parts.packets.close()  # wakes the source in a put
        for stage in (parts.source, parts.decoder):
            if not stage.join(RELEASE_JOIN_S):
                log.error("stream %s: %s did not stop in %g s", sid, stage.name, RELEASE_JOIN_S)
        lost = sum(isinstance(item, (Packet, Frame)) for item in [*drain_ring(parts.packets), *drain_ring(parts.frames)])
        if lost:
            parts.stats.drop("removed", lost)
        try:  # the decoder's own end of stream, if it sent one, was drained with the frames
            parts.frames.put(EndOfStream(sid, "removed"), timeout=RELEASE_JOIN_S)
        except RingClosed:
            pass

    # -- release --------------------------------------------------------------------------
    def release_ready(self) -> None:
        """Release the removed streams whose end has passed every stage (the supervisor's
        loop calls this; cheap when there are none)."""
        for sid in list(self.removing):
            gone = self.p.roster.gone(sid)
            if gone is None or gone.is_set():
                self.release(sid)

    def release(self, stream_id: str) -> dict[str, Any] | None:
        """Join the stream's threads, close its source, drop its state everywhere; returns
        its final summary (None if another thread released it first)."""
        p = self.p
        with self.lock:
            parts = self.parts.get(stream_id)
            if parts is None or stream_id not in self.removing:
                return self.removed.get(stream_id)
            self._unregister(stream_id, parts)
            self.removing.discard(stream_id)
        for stage in (parts.source, parts.decoder):
            if not stage.join(RELEASE_JOIN_S):
                log.error("stream %s: %s still running after %g s", stream_id, stage.name, RELEASE_JOIN_S)
        if not parts.source.started_at:
            parts.source.source.close()  # never ran: its cleanup never closed it
        p.inference.remove_input(stream_id)
        p.tracker.forget(stream_id)
        with self.lock:  # as add_stream changes them
            for sink_stage in p.sink_stages:
                sink_stage.streams = [s for s in sink_stage.streams if s != stream_id]
                sink_stage.sink.bind_streams(list(sink_stage.streams))
        return self._keep_final(parts.stats)

    def _keep_final(self, stats: StreamStats) -> dict[str, Any]:
        p, sid = self.p, stats.stream_id
        stats.set_state("removed")
        stats.paused = False
        final = stats.summary()
        latency = p.metrics.forget(sid)
        if latency:
            final["latency_ms"] = latency
        with self.lock:
            self.removed.pop(sid, None)
            self.removed[sid] = final
            while len(self.removed) > REMOVED_KEPT:
                self.removed.popitem(last=False)
            for key in ("packets", "frames", "results", "detections"):
                self.removed_totals[key] += getattr(stats, key)
            self.removed_drops.update(stats.drops_snapshot())
            self.problems.extend(stats.problems)
        log.info("stream %s removed: %d results", sid, stats.results)
        return final

    def finish(self) -> None:
        """The run ended (every thread joined): release what was still being removed."""
        for sid in list(self.removing):
            self.release(sid)

