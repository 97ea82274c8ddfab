"""The Source stage: runs one :class:`~sources.base.Source` in its own thread, putting its
packets into the stream's packet ring, then the end of stream.

On a live stream that falls behind (the decoder's packet ring is full) it drops packets up
to the next keyframe, so no frame is decoded only to be thrown away and the decoder
restarts cleanly on a keyframe (drops counted as ``gop_skip``).
"""

from __future__ import annotations

import logging
import time

from pipeline.core.items import EndOfStream, Packet
from pipeline.core.ring import RingBuffer
from pipeline.core.stage import Bus, Stage
from pipeline.core.stats import StreamStats
from sources.base import Source

log = logging.getLogger("vidpipe.source")


class SourceStage(Stage):
    per_stream = True

    def __init__(self, source: Source, bus: Bus, out: RingBuffer, stats: StreamStats) -> None:
        super().__init__(f"source:{source.stream_id}", bus, source.stream_id)
        self.source = source
        self.out = out
        self._skip_to_keyframe = False
        source.attach(stats, self._stop)  # the source reports into the stream's counters, stops with the stage

    def run(self) -> None:
        src, stats = self.source, self.source.stats
        if not src.opened:
            src.open()
        if not src.reports_state:
            stats.set_state("streaming")
        reason = "eos"
        items = iter(src.packets())
        while True:
            t0 = time.perf_counter()
            item = next(items, None)  # reading / demuxing: the source's own work
            self.busy_s += time.perf_counter() - t0
            if item is None:
                break
            if self.stopping:
                reason = "stopped"
                break
            if isinstance(item, Packet):
                stats.packets += 1
                self.items += 1
                if src.live:
                    self._put_live(item)
                    continue
            self.put(self.out, item)
        if self.stopping:  # also when the source ended its own iteration on the stop (a paced file)
            reason = "stopped"
        if stats.state != "failed":
            stats.set_state("ended")
        self.put(self.out, EndOfStream(src.stream_id, reason))

    def _put_live(self, packet: Packet) -> None:
        if self._skip_to_keyframe:
            if not packet.keyframe:
                self.source.stats.drop("gop_skip")
                return
            self._skip_to_keyframe = False
        if len(self.out) >= self.out.capacity or not self.put(self.out, packet):
            self._skip_to_keyframe = True
            self.source.stats.drop("gop_skip")

    def on_failure(self, exc: BaseException) -> None:
        # End the stream downstream so the other stages finish it; the error is on the bus.
        stats = self.source.stats
        stats.set_state("failed")
        stats.error = f"{type(exc).__name__}: {exc}"
        self.end_stream_downstream(self.out, exc)

    def cleanup(self) -> None:
        self.source.close()
