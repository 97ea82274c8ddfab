"""Annotated video sink: masks, boxes, labels (class, track id, score), traces and a pose
model's skeletons drawn with supervision's annotators (masks blended per box, in the same
palette, so no full-frame masks are made), a classification model's top class and a
semantic segmentation model's class overlay (:mod:`sinks.draw`), encoded H.264 with PyAV
into mp4, one file per stream.

Timing: each frame keeps its source timestamp (``Result.pts``, relative to the stream's
first frame, in a 1/90000 s time base), so a 10 fps or variable-rate source plays at its
own speed; frames without timestamps are spaced at ``fps`` (default 30).

Durability: the mp4 is fragmented (``empty_moov``) with a fragment at least every second
and a keyframe every second of video; x264 runs with ``tune=zerolatency`` (no lookahead,
no B-frames) so frames reach the muxer as they come, and the file is flushed after every
packet. A process killed even with SIGKILL leaves a file that plays up to its last
complete fragment (about the last second is lost); end of stream or a stop finalises it.
When the file replaces an older one (``overwrite``), it is written as
``<name>.partial`` and renamed over the old one when finalised: a killed run leaves the
old video whole and the new, playable-so-far one under the ``.partial`` name.

Example:
    >>> sink = AnnotatedVideoSink(VideoSinkConfig(path="out/{stream}.mp4", fps=30))
    >>> sink.name, sink.lossless   # a file per stream is opened by its first frame
    ('video:{stream}.mp4', True)
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.frame import PictureType

from pipeline.core.errors import VidpipeError
from pipeline.core.items import EndOfStream
from pipeline.core.paths import safe_filename
from pipeline.vision.result import Result
from sinks import blend
from sinks.base import Sink, check_config
from sinks.blend import blend_mask
from sinks.config import VideoSinkConfig
from sinks.draw import draw_classification, draw_keypoints, draw_semantic, keypoint_annotators
from sinks.files import OutputFile, make_folder, refuse_existing

log = logging.getLogger("vidpipe.sink.video")


TIME_BASE = Fraction(1, 90000)  # MPEG ticks: fine enough for any source's timestamps
KEYFRAME_EVERY_S = 1.0  # with the fragment length, what a SIGKILL can cost
MUXER_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof",
                 "frag_duration": str(int(KEYFRAME_EVERY_S * 1_000_000)), "flush_packets": "1"}
DEFAULT_FPS = 30.0


def yuv420_frame(image: np.ndarray) -> av.VideoFrame:
    """A BGR image (even sizes) as the encoder's yuv420p frame: OpenCV's BT.601 conversion
    written straight into the frame's planes (0.3 ms at 720p; PyAV's ``from_ndarray`` and
    swscale take 2-3 ms)."""
    h, w = image.shape[:2]
    i420 = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)  # Y (h rows), then U and V (h/4 rows of w each)
    frame = av.VideoFrame(w, h, "yuv420p")
    planes = (i420[:h], i420[h:h + h // 4].reshape(h // 2, w // 2), i420[h + h // 4:].reshape(h // 2, w // 2))
    for plane, data in zip(frame.planes, planes):
        np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width] = data
    return frame


class _StreamWriter:
    """One stream's mp4: H.264 frames at their own timestamps, fragment by fragment."""

    def __init__(self, output: OutputFile, width: int, height: int, fps: float, crf: int, preset: str = "ultrafast") -> None:
        self.output = output
        self.path = output.begin()
        self.width, self.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        self.container = av.open(str(self.path), "w", format="mp4", options=MUXER_OPTIONS)
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.codec_context.time_base = self.stream.time_base = TIME_BASE
        self.stream.options = {"crf": str(crf), "preset": preset, "tune": "zerolatency",
                               "g": str(max(1, round(fps * 10)))}  # keyframes are forced by time; this is a cap
        self.fps = fps
        self.frames = 0
        self._offset: float | None = None  # seconds added to a source pts: first frame at 0, restarts rebased
        self._last_t = -1.0
        self._last_key = -KEYFRAME_EVERY_S

    def _time(self, pts: float | None) -> float:
        """The frame's time in the video: its pts, made to start at 0 and to increase
        (a stream whose pts restart, e.g. after a reconnect, continues 1/fps later)."""
        step = 1.0 / self.fps
        if pts is None:
            return self._last_t + step if self.frames else 0.0
        if self._offset is None:
            self._offset = -pts
        t = pts + self._offset
        if t <= self._last_t:
            self._offset = self._last_t + step - pts
            t = self._last_t + step
        return t

    def write(self, image: np.ndarray, pts: float | None) -> None:
        frame = yuv420_frame(image[: self.height, : self.width])
        t = self._time(pts)
        ticks = max(round(t / TIME_BASE), round(self._last_t / TIME_BASE) + 1 if self.frames else 0)
        frame.pts, frame.time_base = ticks, TIME_BASE
        if t - self._last_key >= KEYFRAME_EVERY_S - 1e-6:
            frame.pict_type = PictureType.I  # x264 makes it an IDR: a new fragment can start here
            self._last_key = t
        self._last_t = ticks * float(TIME_BASE)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        finally:
            self.container.close()
        self.output.commit()


class AnnotatedVideoSink(Sink):
    """Draws each result on its frame into an mp4 per stream (what is drawn: the config)."""

    lossless = True  # a video with holes is rarely wanted; set lossless: false to let it drop

    def __init__(self, config: VideoSinkConfig, name: str | None = None) -> None:
        self.config = check_config(config, VideoSinkConfig)
        self.template = config.path
        self.lossless = config.lossless
        self.name = name or f"video:{Path(self.template).name}"
        self.writers: dict[str, _StreamWriter] = {}
        self._annotators: dict[str, dict] = {}
        self.streams: list[str] = []

    def bind_streams(self, streams: list[str]) -> None:
        self.streams = list(streams)

    def open(self) -> None:
        """At start, not at each stream's first frame: one line if a stream's file exists
        (and may not be replaced), several streams share a file, or a folder cannot be made."""
        if len(self.streams) > 1 and "{stream}" not in self.template:
            raise VidpipeError(f"sink {self.name}: {len(self.streams)} streams need a '{{stream}}' in the path {self.template}")
        for stream in self.streams:
            path = self._path(stream)
            refuse_existing(path, self.config.overwrite, self.name)
            make_folder(path, self.name)
        blend.warm_up()

    def _path(self, stream: str) -> Path:
        if "{stream}" in self.template:
            return Path(self.template.format(stream=safe_filename(stream)))  # ids never leave the folder
        if self.writers and stream not in self.writers:
            raise VidpipeError(f"video sink {self.template}: several streams need a '{{stream}}' in the path")
        return Path(self.template)

    def _annotators_for(self, stream: str) -> dict:
        import supervision as sv

        if stream not in self._annotators:  # traces keep per-stream history
            self._annotators[stream] = {
                "box": sv.BoxAnnotator(thickness=2),
                "label": sv.LabelAnnotator(text_scale=0.5, text_padding=4), "trace": sv.TraceAnnotator(trace_length=40),
                **keypoint_annotators(),
            }
        return self._annotators[stream]

    @staticmethod
    def draw_masks_cropped(image: np.ndarray, dets, opacity: float = 0.45) -> None:
        """Blend each mask into its box region, in the class colour of supervision's
        palette: no full-frame masks (N × H × W) are made."""
        import supervision as sv

        palette = sv.ColorPalette.DEFAULT
        for m, b, c in zip(dets.masks, dets.mask_boxes.tolist(), dets.class_id.tolist()):
            blend_mask(image, m, b[0], b[1], palette.by_idx(c).as_bgr(), opacity)

    def annotate(self, result: Result) -> np.ndarray:
        """The result's frame with its detections drawn (per the config's switches)."""
        if result.image is None:
            raise VidpipeError("video sink: the result carries no frame")
        cfg = self.config
        image = result.image.copy()
        dets = result.detections
        if cfg.masks and dets.semantic is not None:
            draw_semantic(image, dets.semantic)
        if cfg.labels and dets.classification is not None:
            draw_classification(image, dets.classification)
        if len(dets) == 0:
            return image
        if cfg.masks and dets.masks is not None:
            self.draw_masks_cropped(image, dets)
        sv_dets = dets.to_supervision(masks=False)
        ann = self._annotators_for(result.stream_id)
        if cfg.boxes:
            image = ann["box"].annotate(image, sv_dets)
        if cfg.traces and sv_dets.tracker_id is not None:
            image = ann["trace"].annotate(image, sv_dets)
        if cfg.labels:
            tracks = dets.tracker_id.tolist() if dets.tracker_id is not None else [-1] * len(dets)
            labels = [
                f"{name}{f' #{t}' if t >= 0 else ''} {s:.2f}"
                for name, t, s in zip(dets.category, tracks, dets.confidence.tolist())
            ]
            image = ann["label"].annotate(image, sv_dets, labels=labels)
        if cfg.keypoints:
            image = draw_keypoints(image, dets, ann, cfg.keypoint_confidence)
        return image

    def write(self, result: Result) -> None:
        if result.image is None:
            raise VidpipeError("video sink: the result carries no frame")
        writer = self.writers.get(result.stream_id)
        if writer is None:
            output = OutputFile(self._path(result.stream_id), self.config.overwrite, self.name)
            writer = self.writers[result.stream_id] = _StreamWriter(output, result.width, result.height,
                                                                    self.config.fps or DEFAULT_FPS, self.config.crf,
                                                                    self.config.preset)
        writer.write(self.annotate(result), result.pts)

    def end_stream(self, eos: EndOfStream) -> None:
        self._annotators.pop(eos.stream_id, None)  # a stream that left keeps no trace history
        writer = self.writers.pop(eos.stream_id, None)
        if writer is not None:
            writer.close()
            log.info("wrote %s (%d frames)", writer.output.path, writer.frames)

    def close(self) -> None:
        writers, self.writers = list(self.writers.values()), {}
        for writer in writers:
            try:
                writer.close()
            except Exception as exc:  # noqa: BLE001 - the other streams' files are still finalised
                log.error("sink %s: could not finalise %s: %s", self.name, writer.path, exc)
