"""The Tracker stage: per-stream tracker state, end-to-end latency, and fan-out to sinks.

It is the last shared stage: every result passes through it once, gets its track ids
(when a tracker is configured), its capture-to-result latency and its stream's drop
counters, and is handed to every sink's ring. Tracker states are per stream, never shared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pipeline.core.items import EndOfStream, StreamInfo
from pipeline.core.ring import RingBuffer
from pipeline.core.stage import Bus, Stage
from pipeline.core.stats import StreamStats
from pipeline.vision.result import Result

log = logging.getLogger("vidpipe.tracker")


class TrackerStage(Stage):
    kind = "tracker"

    def __init__(self, bus: Bus, inp: RingBuffer, outputs: list[RingBuffer], streams: dict[str, StreamStats],
                 tracker_factory: Callable[[StreamInfo], Any] | None = None, carry_masks: bool = True) -> None:
        super().__init__("tracker", bus)
        self.inp = inp
        self.outputs = outputs
        self.streams = streams
        self.tracker_factory = tracker_factory
        self.carry_masks = carry_masks  # infer_interval frames: last masks scaled to the box, or none
        self.observe: Callable[[Result], None] | None = None  # metrics, per result
        self.trackers: dict[str, Any] = {}
        self.infos: dict[str, StreamInfo] = {}

    def _fan_out(self, item: object) -> None:
        for ring in self.outputs:
            self.put(ring, item)

    def run(self) -> None:
        open_streams = set(self.streams)
        while open_streams:
            item = self.get(self.inp)
            if isinstance(item, StreamInfo):
                self.infos[item.stream_id] = item
                if self.tracker_factory is None:
                    continue
                existing = self.trackers.get(item.stream_id)
                if existing is None:
                    self.trackers[item.stream_id] = self.tracker_factory(item)
                elif getattr(self.tracker_factory, "reset_on_reconnect", False):
                    existing.reset()  # a new StreamInfo mid-stream: the source reconnected
                continue
            if isinstance(item, EndOfStream):
                open_streams.discard(item.stream_id)
                self._fan_out(item)
                continue
            assert isinstance(item, Result)
            t0 = time.perf_counter()
            self.current_stream = item.stream_id
            tracker = self.trackers.get(item.stream_id)
            if tracker is not None:
                if item.inferred:
                    item.detections = tracker.update(item.detections)
                else:
                    names = item.detections.class_names
                    item.detections = tracker.predict((item.height, item.width), names, self.carry_masks)
                item.timings["track"] = (time.perf_counter() - t0) * 1e3
            stats = self.streams[item.stream_id]
            stats.results += 1
            stats.detections += len(item.detections)
            item.drops = stats.drops_snapshot()
            item.stream_state = stats.state
            item.latency_ms = (time.time() - item.captured_at) * 1e3
            if self.observe is not None:
                self.observe(item)
            self.items += 1
            self.busy_s += time.perf_counter() - t0
            self._fan_out(item)
