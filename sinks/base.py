"""Sinks consume results. Each runs in its own SinkStage thread behind its own ring, so a
slow sink never blocks the pipeline unless it is configured lossless (``block`` ring)."""

from __future__ import annotations

import logging
import time

from pipeline.frames import EndOfStream
from pipeline.result import Result
from pipeline.ring import RingBuffer
from pipeline.stage import Bus, Stage

log = logging.getLogger("vidpipe.sink")


class Sink:
    """Override ``write`` (and ``open``/``close``). ``lossless`` sinks get a blocking ring."""

    name = "sink"
    lossless = True

    def open(self) -> None:
        """Acquire resources; called on the owner's thread so errors surface at start."""

    def write(self, result: Result) -> None:
        raise NotImplementedError

    def end_stream(self, eos: EndOfStream) -> None:
        """One stream ended (the others may go on)."""

    def close(self) -> None:
        """Flush and release; called once, also after a failure or a stop."""


class SinkStage(Stage):
    kind = "sink"

    def __init__(self, sink: Sink, bus: Bus, inp: RingBuffer, streams: list[str]) -> None:
        super().__init__(f"sink:{sink.name}", bus)
        self.sink = sink
        self.inp = inp
        self.streams = streams

    def run(self) -> None:
        open_streams = set(self.streams)
        while open_streams:
            item = self.get(self.inp)
            if isinstance(item, EndOfStream):
                open_streams.discard(item.stream_id)
                self.sink.end_stream(item)
                continue
            t0 = time.perf_counter()
            self.current_stream = item.stream_id
            self.sink.write(item)
            self.items += 1
            self.busy_s += time.perf_counter() - t0

    def cleanup(self) -> None:
        self.sink.close()
