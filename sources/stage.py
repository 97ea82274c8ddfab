"""The Source stage: runs one :class:`~sources.base.Source` in its own thread, putting its
packets into the stream's packet ring, then the end of stream.

On a live stream that falls behind (the decoder's packet ring is full) it drops packets up
to the next keyframe, so no frame is decoded only to be thrown away and the decoder
restarts cleanly on a keyframe (drops counted as ``gop_skip``).

Paused (``Pipeline.pause_stream``): a file (or folder, or the synthetic world) is not read
until resumed, and resumes where it stopped. A live source (a camera, a URL, a
``realtime`` file standing in for one) keeps reading and drops what it reads (``paused``),
as a DeepStream or Roboflow user expects of a camera: its session stays up, no stall
watchdog fires, nothing queues up in its buffers, and on resume it is live at once, from
the next keyframe, the first result marked ``gap`` (the decoder reopens, and the tracker
takes it as it takes a reconnect: ``reset_on_reconnect``). What was in flight when it
paused still finishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from pipeline.core.items import Discontinuity, EndOfStream, Packet, StreamInfo
from pipeline.core.ring import RingBuffer
from pipeline.core.stage import POLL_S, Bus, Stage
from pipeline.core.stats import StreamStats
from sources.base import Source, SourceItem

log = logging.getLogger("vidpipe.source")


class SourceStage(Stage):
    per_stream = True

    def __init__(self, source: Source, bus: Bus, out: RingBuffer, stats: StreamStats) -> None:
        super().__init__(f"source:{source.stream_id}", bus, source.stream_id)
        self.source = source
        self.out = out
        self._skip_to_keyframe = False
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._info: StreamInfo | None = None  # the last one passed on: sent again after a pause
        self._held = False  # paused: the decoder was told to hand over its frames (Discontinuity)
        self._gap = False  # paused since the last packet kept: the next one kept is marked gap
        self.stop_reason = "stopped"  # the end of stream's reason when stopped ("removed": remove_stream)
        source.attach(stats, self._stop)  # the source reports into the stream's counters, stops with the stage

    # -- pause (called by the owner) --------------------------------------------------------
    def pause(self) -> None:
        """A file stops being read; a live source keeps reading and drops what it reads
        (``paused``), so the camera's session and buffers never stall (see the module doc)."""
        self.source.stats.paused = True
        self._running.clear()

    def resume(self) -> None:
        self.source.stats.paused = False
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _hold(self) -> None:
        """Pausing a live source: the decoder hands over the frames it holds now (it keeps a
        few in its threads), so what was read before the pause finishes now, not after the
        resume. (A paused file keeps them: its decoding goes on from the same packet, mid-GOP.)"""
        if self._info is not None and not self._held:
            self.put(self.out, Discontinuity(self.source.stream_id, "paused"))
            self._held = True

    def _unhold(self) -> None:
        """Resuming: the decoder reopens (a Discontinuity closed it)."""
        if self._held and self._info is not None:
            self.put(self.out, self._info)
        self._held = False

    def _wait_while_paused(self) -> None:
        while not self._running.wait(POLL_S) and not self.stopping:
            pass

    def run(self) -> None:
        src, stats = self.source, self.source.stats
        if not src.opened:
            src.open()
        if not src.reports_state:
            stats.set_state("streaming")
        items = iter(src.packets())
        try:
            self._read(items)
        finally:
            # A live source's connection (its generator's `finally`) closes now, also after an
            # error, not whenever the generator is collected: a camera sees its TEARDOWN at once.
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _read(self, items: Iterator[SourceItem]) -> None:
        src, stats = self.source, self.source.stats
        reason = "eos"
        while True:
            if not src.live:
                self._wait_while_paused()
            t0 = time.perf_counter()
            item = next(items, None)  # reading / demuxing: the source's own work
            self.busy_s += time.perf_counter() - t0
            if item is None:
                break
            if self.stopping:
                break
            if isinstance(item, Packet):
                stats.packets += 1
                self.items += 1
                if src.live:
                    self._put_live(item)
                    continue
            elif isinstance(item, StreamInfo):
                self._info, self._held = item, False
            self.put(self.out, item)
        if self.stopping:  # also when the source ended its own iteration on the stop (a paced file)
            reason = self.stop_reason
        if stats.state != "failed":
            stats.set_state("ended")
        self.put(self.out, EndOfStream(src.stream_id, reason))

    def _put_live(self, packet: Packet) -> None:
        if not self._running.is_set():  # paused: read and dropped; decoding resumes on a keyframe
            self.source.stats.drop("paused")
            self._hold()
            # The first packet kept after the pause starts a gap (like a reconnect), even if a
            # new session (StreamInfo) came meanwhile.
            self._skip_to_keyframe = self._gap = True
            return
        if self._skip_to_keyframe:
            if not packet.keyframe:
                self.source.stats.drop("paused" if self._gap else "gop_skip")
                return
            self._skip_to_keyframe = False
        self._unhold()
        packet.gap = packet.gap or self._gap
        if self.out.full or not self.put(self.out, packet):
            self._skip_to_keyframe = True
            self.source.stats.drop("gop_skip")
            return
        self._gap = False

    def on_failure(self, exc: BaseException) -> None:
        # End the stream downstream so the other stages finish it; the error is on the bus.
        stats = self.source.stats
        stats.set_state("failed")
        stats.error = f"{type(exc).__name__}: {exc}"
        self.end_stream_downstream(self.out, exc)

    def cleanup(self) -> None:
        self.source.close()
