"""The Tracker stage: per-stream tracker state, end-to-end latency, and fan-out to sinks.

It is the last shared stage: every result passes through it once, gets its track ids
(when a tracker is configured), its capture-to-result latency and its stream's drop
counters, and is handed to every sink's ring. Tracker states are per stream, never shared:
each is made when its stream's StreamInfo arrives (its fps sets the lost-track timeout).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pipeline.core.items import EndOfStream, StreamInfo
from pipeline.core.ring import RingBuffer
from pipeline.core.roster import Roster
from pipeline.core.stage import Bus, Stage
from pipeline.core.stats import StreamStats
from pipeline.track import kalman, recovery
from pipeline.track.base import Tracker
from pipeline.track.config import TrackerConfig
from pipeline.track.factory import make_tracker
from pipeline.vision import geometry
from pipeline.vision.result import Result

log = logging.getLogger("vidpipe.tracker")


class TrackerStage(Stage):
    """Tracks, stamps and fans out every result. ``config`` None (or type none): results
    pass untracked. ``on_result`` (metrics) sees each result before the sinks do."""

    def __init__(self, bus: Bus, inp: RingBuffer, outputs: list[RingBuffer], streams: dict[str, StreamStats],
                 config: TrackerConfig | None = None, on_result: Callable[[Result], None] | None = None,
                 roster: Roster | None = None) -> None:
        super().__init__("tracker", bus)
        self.inp = inp
        self.outputs = outputs
        self.streams = dict(streams)  # its own: streams join and leave while it runs
        self.roster = roster if roster is not None else Roster(streams)
        self.roster.join(self)
        self.config = config
        self.carry_masks = config.carry_masks if config is not None else True  # frames without inference: last masks scaled, or none
        self.reset_on_reconnect = config is not None and config.reset_on_reconnect
        self.on_result = on_result
        self.trackers: dict[str, Tracker] = {}
        self.infos: dict[str, StreamInfo] = {}
        if config is not None and config.type != "none":
            geometry.warm_up()  # compile the IoU and direction kernels now, not on the first frame
            recovery.warm_up()
            kalman.warm_up()

    def add_stream(self, stream_id: str, stats: StreamStats) -> None:
        """A stream joins (before its first item can arrive): its counters."""
        self.streams[stream_id] = stats

    def forget(self, stream_id: str) -> None:
        """Release a stream's tracker state and counters (after its end of stream)."""
        self.trackers.pop(stream_id, None)
        self.infos.pop(stream_id, None)
        self.streams.pop(stream_id, None)

    def _fan_out(self, item: object) -> None:
        for ring in self.outputs:
            self.put(ring, item)

    def _on_stream_info(self, info: StreamInfo) -> None:
        """A stream (re)starts: make its tracker, or on a reconnect reset it if so configured."""
        self.infos[info.stream_id] = info
        existing = self.trackers.get(info.stream_id)
        if existing is None:
            tracker = make_tracker(self.config, info)
            if tracker is not None:
                self.trackers[info.stream_id] = tracker
        elif self.reset_on_reconnect:
            log.info("stream %s reconnected: tracker reset", info.stream_id)
            existing.reset()

    def _track(self, item: Result) -> None:
        tracker = self.trackers.get(item.stream_id)
        if tracker is None:
            return
        t0 = time.perf_counter()
        if item.inferred:
            item.detections = tracker.update(item.detections, item.image)
        else:
            item.detections = tracker.predict((item.height, item.width), item.detections.class_names, self.carry_masks)
        item.timings["track"] = (time.perf_counter() - t0) * 1e3

    def run(self) -> None:
        while not self.roster.done(self):
            item = self.poll(self.inp)
            if item is None:
                continue
            if isinstance(item, StreamInfo):
                self._on_stream_info(item)
                continue
            if isinstance(item, EndOfStream):
                self.forget(item.stream_id)  # a removed stream leaves no tracker state behind
                self.roster.end(self, item.stream_id)
                self._fan_out(item)
                continue
            assert isinstance(item, Result)
            t0 = time.perf_counter()
            self.current_stream = item.stream_id
            self._track(item)
            stats = self.streams[item.stream_id]
            stats.results += 1
            stats.detections += len(item.detections)
            item.drops = stats.drops_snapshot()
            item.stream_state = stats.state
            item.latency_ms = (time.time() - item.captured_at) * 1e3
            if self.on_result is not None:
                self.on_result(item)
            self.items += 1
            self.busy_s += time.perf_counter() - t0
            self._fan_out(item)
