"""The Batcher+Inference stage: one per model, shared by every stream bound to it.

Like DeepStream's stream muxer, it gathers frames from all its streams into a batch of up
to ``max_batch_size``, sent when full or when ``max_wait_ms`` has passed since the batch's
first frame — or, as soon as every stream has a frame in the batch and none has another
waiting, at once: nothing more can come sooner than a stream's next frame, so waiting
would only add latency (a lone camera's frame would wait ``max_wait_ms`` for nobody).
Streams are visited round-robin, one frame each per pass, so a busy stream cannot starve
the others and a stalled one delays nobody by more than ``max_wait_ms``.
Results go out in the order frames came in, so each stream's order is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from pipeline.core.items import EndOfStream, Frame
from pipeline.core.ring import RingBuffer, RingClosed
from pipeline.core.roster import Roster
from pipeline.core.stage import POLL_S, Bus, Stage, StopStage
from pipeline.infer.config import BatchingConfig
from pipeline.infer.model import Model
from pipeline.infer.tasks import StreamState
from pipeline.vision.detections import Detections
from pipeline.vision.result import Result

log = logging.getLogger("vidpipe.inference")


class InferenceStage(Stage):
    def __init__(self, bus: Bus, model: Model, inputs: dict[str, RingBuffer], out: RingBuffer,
                 waker: threading.Event, batching: BatchingConfig | None = None,
                 infer_intervals: Mapping[str, int] | None = None, roster: Roster | None = None) -> None:
        super().__init__(f"inference:{model.name}", bus)
        self.model = model
        self.inputs = dict(inputs)
        self._inputs_lock = threading.Lock()  # streams join (add_input) from other threads
        self.roster = roster if roster is not None else Roster(inputs)
        self.roster.join(self)
        self.out = out
        self.waker = waker
        batching = batching or BatchingConfig()
        limit = model.batch_limit
        self.max_batch_size = min(batching.max_batch_size, limit) if limit else batching.max_batch_size
        self.max_wait_s = batching.max_wait_ms / 1000.0
        self.batches = 0
        self._rr = 0
        # infer_interval: inference on every N-th frame of a stream; the tracker carries the rest.
        self.intervals = dict(infer_intervals or {})
        # Each stream's decoding memory (the classification window): the decoder is shared by
        # every stream of the model, so the state is kept here, per stream, until its end.
        self.stream_states: dict[str, StreamState] = {}

    def add_input(self, stream_id: str, ring: RingBuffer, infer_interval: int = 1) -> None:
        """A stream joins the batch (the pipeline puts it on the roster too): its frames
        are collected from the next pass on; no other stream waits for it."""
        with self._inputs_lock:
            self.intervals[stream_id] = infer_interval
            self.inputs = {**self.inputs, stream_id: ring}  # a new dict: a pass in progress keeps its own
        self.waker.set()

    def remove_input(self, stream_id: str) -> None:
        """Forget a stream: after its end of stream, or one that never started."""
        with self._inputs_lock:
            self.inputs = {sid: ring for sid, ring in self.inputs.items() if sid != stream_id}
            self.intervals.pop(stream_id, None)
        self.stream_states.pop(stream_id, None)

    def needs_inference(self, frame: Frame) -> bool:
        n = self.intervals.get(frame.stream_id, 1)
        return n <= 1 or frame.index % n == 0

    def _collect(self) -> list:
        """Items for one batch: up to max_batch_size frames, plus control items met; empty
        when nothing came and the roster says this stage is done."""
        items: list = []
        n_frames = 0
        deadline = None
        contributed: set[str] = set()  # streams with a frame in this batch
        while True:
            self.waker.clear()  # before scanning, so a put during the scan is not missed
            progressed = False
            rings = list(self.inputs.values())  # this pass's streams (joining ones: the next pass)
            count = len(rings)
            for k in range(count):
                ring = rings[(self._rr + k) % count]
                try:
                    item = ring.get_nowait()
                except RingClosed:
                    raise StopStage() from None
                if item is None:
                    continue
                progressed = True
                items.append(item)
                if isinstance(item, Frame):
                    contributed.add(item.stream_id)
                if isinstance(item, Frame) and self.needs_inference(item):
                    n_frames += 1
                    if deadline is None:
                        deadline = time.perf_counter() + self.max_wait_s
                    if n_frames >= self.max_batch_size:
                        break
            self._rr += 1
            if n_frames >= self.max_batch_size:
                return items
            if items and n_frames == 0:
                return items  # control items only: pass them on at once
            if not progressed:
                now = time.perf_counter()
                if deadline is not None and (now >= deadline or contributed.issuperset(self.inputs)):
                    return items
                if self.stopping:
                    raise StopStage()
                if deadline is None and self.roster.done(self):
                    return items
                wait = POLL_S if deadline is None else min(POLL_S, deadline - now)
                self.waker.wait(max(0.0, wait))

    def run(self) -> None:
        while not self.roster.done(self):
            items = self._collect()
            frames, results = [], {}
            for it in items:
                if isinstance(it, Frame):
                    if self.needs_inference(it):
                        frames.append(it)
                    else:
                        results[id(it)] = self._carried(it)
            if frames:
                t0 = time.perf_counter()
                self.current_stream = ",".join(sorted({f.stream_id for f in frames}))
                results.update(self._infer(frames, t0))
                self.busy_s += time.perf_counter() - t0
                self.batches += 1
            for it in items:
                if isinstance(it, Frame):
                    self.put(self.out, results[id(it)])
                else:
                    self.put(self.out, it)
                    if isinstance(it, EndOfStream):
                        self.remove_input(it.stream_id)  # what may follow in its ring is never read
                        self.roster.end(self, it.stream_id)

    def _carried(self, f: Frame) -> Result:
        """A frame skipped by infer_interval: the tracker fills in its detections."""
        timings = dict(f.timings)
        timings["queue"] = (time.perf_counter() - f.decoded_at) * 1e3
        return Result(f.stream_id, f.index, f.pts, f.captured_at, f.width, f.height, self.model.name,
                      Detections.empty((f.height, f.width), class_names=self.model.class_names), timings,
                      inferred=False, gap=f.gap, image=f.image, source_path=f.source_path)

    def _infer(self, frames: list[Frame], t0: float) -> dict[int, Result]:
        model = self.model
        results = {}
        # One batch per input size (one in all unless frames of several sizes meet under `rect`).
        for indices, blob, geoms in model.batches([f.image for f in frames]):
            t1 = time.perf_counter()
            outputs = model.run(blob)
            t2 = time.perf_counter()
            for k, (i, g) in enumerate(zip(indices, geoms)):
                f = frames[i]
                self.current_stream = f.stream_id
                tp = time.perf_counter()
                dets = model.postprocess(outputs, k, g, self.stream_states.setdefault(f.stream_id, StreamState()))
                timings = dict(f.timings)
                timings["queue"] = (t0 - f.decoded_at) * 1e3
                timings["preprocess"] = (t1 - t0) * 1e3 / len(indices)
                timings["inference"] = (t2 - t1) * 1e3
                timings["postprocess"] = (time.perf_counter() - tp) * 1e3
                results[id(f)] = Result(f.stream_id, f.index, f.pts, f.captured_at, f.width, f.height, model.name,
                                        dets, timings, gap=f.gap, image=f.image, source_path=f.source_path)
                self.items += 1
            t0 = time.perf_counter()  # the next size's batch is prepared from here
        return results
