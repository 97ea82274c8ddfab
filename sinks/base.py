"""Sinks consume results. Each runs in its own SinkStage thread behind its own ring, so a
slow sink never blocks the pipeline unless it is configured lossless (``block`` ring)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pipeline.core.errors import StageError
from pipeline.core.items import EndOfStream
from pipeline.core.options import Options
from pipeline.core.ring import RingBuffer, RingClosed, RingEmpty
from pipeline.core.roster import Roster
from pipeline.core.stage import POLL_S, Bus, BusMessage, Stage, StopStage
from pipeline.vision.result import Result

log = logging.getLogger("vidpipe.sink")

FAILURES_LOGGED, FAILURES_LOG_EVERY = 5, 100  # a sink failing on every frame logs its first few, then every 100th

OptionsT = TypeVar("OptionsT", bound=Options)


def check_config(config: Any, cls: type[OptionsT]) -> OptionsT:
    """``config`` itself when it is a validated ``cls``; a TypeError naming both otherwise
    (sinks take their option objects, never loose arguments).

    >>> from sinks.config import MasksSinkConfig
    >>> check_config(MasksSinkConfig(), MasksSinkConfig).type
    'masks'
    >>> check_config("out/masks", MasksSinkConfig)
    Traceback (most recent call last):
    ...
    TypeError: expected a MasksSinkConfig, got str
    """
    if not isinstance(config, cls):
        raise TypeError(f"expected a {cls.__name__}, got {type(config).__name__}")
    return config


class Sink:
    """Override ``write`` (and ``open``/``close``). ``lossless`` sinks get a blocking ring."""

    name = "sink"
    lossless = True
    config: Any = None  # the sink's validated options (a ``SinkConfig`` member), when built from them
    dropped = 0  # results given up without a failure (e.g. a PUSH send no consumer took in time)
    drop_reason = ""  # why, for the run's problems line

    @property
    def fail_fast(self) -> bool:
        """A failing write stops the pipeline (else it is logged and counted): the option of
        every sink type."""
        return bool(getattr(self.config, "fail_fast", False))

    def bind_streams(self, streams: list[str]) -> None:
        """The ids of the streams this sink will get, told before ``open`` (a sink writing a
        file per stream checks those files at start), and again when streams join or are
        removed while it runs."""

    def open(self) -> None:
        """Acquire resources; called on the owner's thread so errors surface at start."""

    def begin_run(self) -> None:
        """Called on the sink's thread once every sink has opened and results may come
        (files are made here, not in ``open``: a run that fails to start leaves none)."""

    def write(self, result: Result) -> None:
        raise NotImplementedError

    def end_stream(self, eos: EndOfStream) -> None:
        """One stream ended (the others may go on)."""

    def idle(self) -> None:
        """Called about every 50 ms while no result comes (e.g. to send heartbeats)."""

    def close(self) -> None:
        """Flush and release; called once, also after a failure or a stop."""


class SinkStage(Stage):
    """Runs one sink. With ``fail_fast`` a failing write stops the pipeline; without it
    the failure is logged and counted, and the sink (and every other) carries on."""

    def __init__(self, sink: Sink, bus: Bus, inp: RingBuffer, streams: list[str], roster: Roster | None = None) -> None:
        super().__init__(f"sink:{sink.name}", bus)
        self.sink = sink
        self.inp = inp
        self.streams = list(streams)
        self.roster = roster if roster is not None else Roster(streams)
        self.roster.join(self)
        self.fail_fast = sink.fail_fast
        self.errors = 0
        self.unfinished = 0  # streams whose end the sink could not finish (a video not finalised)
        self.first_error: str | None = None  # for the run's summary: what went wrong, not only how often
        sink.bind_streams(list(streams))
        if hasattr(sink, "stop_event"):
            sink.stop_event = self._stop  # lets a sink blocked on back-pressure notice a stop

    def add_stream(self, stream_id: str) -> None:
        """A stream joins while the pipeline runs: the sink is told the ids it now gets."""
        self.streams = [*self.streams, stream_id]
        self.sink.bind_streams(list(self.streams))

    def run(self) -> None:
        self.sink.begin_run()
        while not self.roster.done(self):
            try:
                item = self.inp.get(timeout=POLL_S)
            except RingEmpty:
                if self.stopping:
                    raise StopStage() from None
                self.sink.idle()
                continue
            except RingClosed:
                raise StopStage() from None
            if isinstance(item, EndOfStream):
                self.unfinished += not self._guarded(self.sink.end_stream, item, item.stream_id, "end of stream")
                self.roster.end(self, item.stream_id)
                continue
            t0 = time.perf_counter()
            self.current_stream = item.stream_id
            self._guarded(self.sink.write, item, item.stream_id, f"frame {item.frame_index}")
            self.items += 1
            self.busy_s += time.perf_counter() - t0

    def _guarded(self, call: Callable[[Any], None], item: Any, stream_id: str, what: str) -> bool:
        """``call(item)``; a failure is counted and reported, isolated unless fail_fast (a
        video that cannot be finalised fails this sink, never the pipeline)."""
        try:
            call(item)
            return True
        except Exception as exc:  # noqa: BLE001 - isolated unless fail_fast
            if self.fail_fast:
                raise
            failures = self.errors + self.unfinished
            self.errors += isinstance(item, Result)
            if failures == 0:
                self.first_error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
                # The owner decides: other sinks still work, or none is left delivering.
                self.bus.post(BusMessage("sink_failed", self.name, stream_id, StageError(self.name, stream_id, exc)))
            if failures < FAILURES_LOGGED or (failures + 1) % FAILURES_LOG_EVERY == 0:
                log.error("sink %s failed on stream %s %s (%d failures so far): %s",
                          self.sink.name, stream_id, what, failures + 1, exc)
            return False

    def stats(self) -> dict:
        out = super().stats()
        out["errors"] = self.errors
        out["dropped"] = self.sink.dropped
        return out

    def problem(self) -> str | None:
        """One line for the run's summary if this sink failed results (else None)."""
        if not self.errors and not self.unfinished:
            return None
        failed = f"failed {self.errors} of {self.items} results" if self.errors else f"failed {self.unfinished} end(s) of stream"
        return f"sink {self.sink.name} {failed}: {self.first_error}"

    def cleanup(self) -> None:
        self.sink.close()
