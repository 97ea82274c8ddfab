"""The Decoder stage: packets of one stream → BGR frames.

Video packets are decoded by a PyAV codec context opened from the source's
:class:`StreamInfo` with ``thread_type = "AUTO"`` (frame threading: about 1.7× faster on
two cores, and older PyAV deadlocks on HEVC with the default slice threading) — except live
sources, decoded with slice threading (``low_delay``): frame threading returns each frame
a frame per extra thread late. Image
packets are decoded with OpenCV; raw packets (the synthetic world) pass through. A corrupt
packet or image is counted as a ``decode_error`` drop, logged, and skipped; it never
shifts the indices of the frames after it. A frame's index is its position in the
source: the packet's for images and raw frames, and for video what
:class:`~sources.positions.FramePositions` finds (from the pts in constant-rate files).
A file whose frames end clearly short of what its container announced (a truncated
download) is reported: a warning, the stream's ``truncated`` summary field and a problem.

Hardware decoding (``hwaccel: cuda`` on a stream: NVDEC) is asked of FFmpeg through PyAV;
frames come back in host memory. Where the device cannot be opened (no GPU, no driver,
an FFmpeg built without it) PyAV raises ``PermissionError`` or another FFmpeg error: the
stage logs it once per stream and decodes in software. What each stream really uses is in
its summary (``decoder``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import av
import cv2
import numpy as np
from av.codec.hwaccel import HWAccel

from pipeline.core.items import Discontinuity, EndOfStream, Frame, Packet, StreamInfo
from pipeline.core.options import StreamOptions
from pipeline.core.ring import RingBuffer
from pipeline.core.stage import Bus, Stage
from pipeline.core.stats import StreamStats
from sources.positions import FramePositions

log = logging.getLogger("vidpipe.decoder")

# Arrival records of packets whose frames never came (corrupt packets) are forgotten past
# this many, keeping the newest: the decoder holds at most a few dozen frames in flight.
ARRIVALS_MAX, ARRIVALS_KEPT = 256, 64
ERRORS_LOGGED = 5  # decode errors logged per stream (all are counted)


class Decoder(Stage):
    per_stream = True

    def __init__(self, stream_id: str, bus: Bus, inp: RingBuffer, out: RingBuffer, stats: StreamStats,
                 options: StreamOptions | None = None, threads: int = 0, thread_type: str = "AUTO", live: bool = False) -> None:
        super().__init__(f"decoder:{stream_id}", bus, stream_id)
        self.inp, self.out, self.stream_stats = inp, out, stats
        self.thread_type, self.threads = thread_type, threads
        self.live = live  # the source delivers in real time (a camera, a realtime file): decode with low delay
        self.options = options or StreamOptions()
        self.sid = stream_id  # the Stage's stream_id is optional; a decoder's never is
        self._codec: Any = None  # av's VideoCodecContext (its typing stubs lack decode())
        self._info: StreamInfo | None = None
        self._positions = FramePositions()
        self._arrivals: dict[int, tuple[float, float | None]] = {}  # raw packet pts -> (captured_at, pts in s)
        self._gap_pending = False  # a packet marked gap came: the next frame out carries it
        self._next_keep: float | None = None  # max_fps: pts (or index) of the next frame to keep
        self._errors_logged = 0
        self.hwaccel_error: str | None = None  # why hardware decoding was given up (once per stream)

    def _create_context(self, codec: str) -> av.CodecContext:
        """A decoding context: on the hardware when asked and possible, else in software."""
        if self.options.hwaccel and self.hwaccel_error is None:
            try:
                ctx = av.CodecContext.create(codec, "r", hwaccel=HWAccel(self.options.hwaccel, self.options.hwaccel_device))
                self.stream_stats.decoder = f"{codec} ({self.options.hwaccel})"
                return ctx
            except (av.error.FFmpegError, OSError, ValueError) as exc:  # PermissionError: no such device here
                self.hwaccel_error = f"{type(exc).__name__}: {exc}"
                log.warning("stream %s: hardware decoding (%s) unavailable (%s): decoding in software",
                            self.stream_id, self.options.hwaccel, self.hwaccel_error)
        ctx = av.CodecContext.create(codec, "r")
        # Frame threading (software only) decodes N frames at once and so returns each N-1
        # frames late: 2 frames (133 ms at 15 fps) on two cores. Live sources want each frame
        # now: slice threading, no hold-back (and no FFmpeg LOW_DELAY flag, which would
        # reorder a stream with B-frames wrongly).
        low_delay = self.options.low_delay if self.options.low_delay is not None else self.live or bool(self._info and self._info.live)
        ctx.thread_type = "SLICE" if low_delay else self.thread_type
        ctx.thread_count = self.threads
        mode = "; low delay" if low_delay else ""
        self.stream_stats.decoder = f"{codec} (software{mode}" + (f"; {self.options.hwaccel} unavailable)" if self.options.hwaccel else ")")
        return ctx

    def _open_codec(self, info: StreamInfo) -> None:
        self._info = info
        self._codec = None
        self._arrivals.clear()  # pts restart with a new session
        self._positions.reset(info)
        if info.codec in (None, "image"):
            self.stream_stats.decoder = "raw" if info.codec is None else "image (OpenCV)"
            return
        ctx = self._create_context(info.codec)
        if info.extradata:
            ctx.extradata = info.extradata
        self._codec = ctx

    def run(self) -> None:
        while True:
            item = self.get(self.inp)
            if isinstance(item, StreamInfo):
                self._flush()
                self._open_codec(item)
                self.put(self.out, item)
            elif isinstance(item, Discontinuity):
                self._flush()
                self._codec = None  # the next session brings its own StreamInfo
            elif isinstance(item, EndOfStream):
                self._flush()
                if item.reason == "eos":
                    self._check_complete()
                self.put(self.out, item)
                return
            else:
                t0, waited = time.perf_counter(), self.put_wait_s
                self._decode(item)
                self.busy_s += time.perf_counter() - t0 - (self.put_wait_s - waited)

    def _keep(self, pts: float | None) -> bool:
        """max_fps: keep evenly spaced frames (by pts, or by arrival when there is none)."""
        if self._info is not None and self._info.start_pts is not None and pts is not None and pts < self._info.start_pts - 1e-6:
            return False  # before start_seconds: decoded only to reach it
        if not self.options.max_fps:
            return True
        period = 1.0 / self.options.max_fps
        t = pts if pts is not None else time.monotonic()
        if self._next_keep is None or t >= self._next_keep - 1e-6 or t < self._next_keep - 10 * period:
            # resync after a jump (loop, reconnect): never fall behind or run ahead
            base = self._next_keep if self._next_keep is not None and t < self._next_keep + period else t
            self._next_keep = base + period
            return True
        self.stream_stats.drop("max_fps")
        return False

    def _emit(self, image: np.ndarray, index: int, pts: float | None, captured_at: float, gap: bool, t0: float,
              source_path: str | None = None) -> None:
        gap = gap or self._gap_pending
        self._gap_pending = False
        now = time.perf_counter()
        frame = Frame(self.sid, index, pts, captured_at, image, decoded_at=now,
                      timings={"decode": (now - t0) * 1e3}, gap=gap, source_path=source_path)
        self.items += 1
        self.stream_stats.frames += 1
        self.put(self.out, frame)  # a frame the ring drops is counted by the ring's on_drop, once

    def _decode(self, packet: Packet) -> None:
        t0 = time.perf_counter()
        data = packet.data
        if packet.gap:
            self._gap_pending = True
        if isinstance(data, np.ndarray):
            if self._keep(packet.pts):
                self._emit(data, packet.index, packet.pts, packet.captured_at, packet.gap, t0, packet.source_path)
            return
        if isinstance(data, (bytes, bytearray, memoryview)):
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                self._decode_error(packet, "not a decodable image")
                return
            if self._keep(packet.pts):
                self._emit(image, packet.index, packet.pts, packet.captured_at, packet.gap, t0, packet.source_path)
            return
        if self._codec is None:
            self._decode_error(packet, "no codec opened (no StreamInfo before the first packet)")
            return
        if data.pts is not None:
            self._arrivals[data.pts] = (packet.captured_at, packet.pts)
        self._positions.fed(data.pts, packet.pts)
        try:
            frames = self._codec.decode(data)
        except av.error.FFmpegError as exc:
            # Where positions are tracked, the frame that never comes is counted at its position.
            self._decode_error(packet, str(exc), counted=self._positions.mode == "count" or data.pts is None)
            return
        self._emit_av(frames, t0)

    def _emit_av(self, frames, t0: float) -> None:
        tb = self._info.time_base if self._info else None
        for f in frames:
            arrival = self._arrivals.pop(f.pts, None) if f.pts is not None else None
            if arrival is not None:  # the source's pts (it may offset them, e.g. when looping)
                captured_at, pts = arrival
            else:
                captured_at, pts = time.time(), (float(f.pts * tb) if (f.pts is not None and tb is not None) else None)
            keep = self._keep(pts)
            if keep or self._positions.mode != "count":  # live: only kept frames are numbered
                index, missing = self._positions.place(f.pts, pts)
                self._lost(missing, f"before frame {index}")
            if keep:
                self._emit(f.to_ndarray(format="bgr24"), index, pts, captured_at, False, t0)
            t0 = time.perf_counter()
        if len(self._arrivals) > ARRIVALS_MAX:
            for k in sorted(self._arrivals)[:-ARRIVALS_KEPT]:
                del self._arrivals[k]

    def _flush(self) -> None:
        if self._codec is None:
            return
        t0 = time.perf_counter()
        try:
            frames = self._codec.decode(None)
        except av.error.FFmpegError as exc:
            log.warning("stream %s: flushing the decoder failed: %s", self.stream_id, exc)
            frames = []
        self._emit_av(frames, t0)
        self._lost(self._positions.finish(), "at the end")

    def _lost(self, missing: int, where: str) -> None:
        """Frames whose packets went in but never came out: counted where they were."""
        if not missing:
            return
        self.stream_stats.drop("decode_error", missing)
        if self._errors_logged < ERRORS_LOGGED:
            log.warning("stream %s: %d frame(s) %s not decoded (corrupt data)", self.stream_id, missing, where)
        self._errors_logged += 1

    def _check_complete(self) -> None:
        """A file that ended clearly short of the frames its container announced."""
        expected = self._info.frames if self._info is not None else None
        self.stream_stats.frames_expected = self._positions.expected_in_range(expected)
        short = self._positions.shortfall(expected)
        if short is None:
            return
        read, want = short
        self.stream_stats.truncated = True
        problem = f"stream {self.stream_id}: input ended early: {read} of {want} frames (truncated file?)"
        self.stream_stats.problems.append(problem)
        log.warning("%s", problem)

    def _decode_error(self, packet: Packet, why: str, counted: bool = True) -> None:
        if counted:
            self.stream_stats.drop("decode_error")
        if self._errors_logged < ERRORS_LOGGED:
            log.warning("stream %s: packet %d not decoded: %s", self.stream_id, packet.index, why)
        self._errors_logged += 1

    def on_failure(self, exc: BaseException) -> None:
        self.end_stream_downstream(self.out, exc)
