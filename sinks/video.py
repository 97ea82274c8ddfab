"""Annotated video sink: masks, boxes, labels (class, track id, score) and traces drawn
with supervision's annotators (masks blended per box, in the same palette, so no
full-frame masks are made), encoded H.264 with PyAV into mp4, one file per stream.

The mp4 is written fragmented (``frag_keyframe+empty_moov``): what was written so far is
a playable file even if the process dies, and end of stream or a stop finalises it.

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
import numpy as np

from pipeline.core.errors import VidpipeError
from pipeline.core.items import EndOfStream
from pipeline.core.paths import safe_filename
from pipeline.vision.result import Result
from sinks.base import Sink, check_config
from sinks.config import VideoSinkConfig

log = logging.getLogger("vidpipe.sink.video")


class _StreamWriter:
    def __init__(self, path: Path, width: int, height: int, fps: float, crf: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.width, self.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        self.container = av.open(str(path), "w", options={"movflags": "frag_keyframe+empty_moov+default_base_moof"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[: self.height, : self.width]), format="bgr24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


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
            }
        return self._annotators[stream]

    @staticmethod
    def draw_masks_cropped(image: np.ndarray, dets, opacity: float = 0.45) -> None:
        """Blend each mask into its box region, in the class colour of supervision's
        palette: no full-frame masks (N × H × W) are made."""
        import supervision as sv

        palette = sv.ColorPalette.DEFAULT
        for m, b, c in zip(dets.masks, dets.mask_boxes, dets.class_id.tolist()):
            region = image[b[1]:b[3], b[0]:b[2]]
            if region.size == 0:
                continue
            color = np.array(palette.by_idx(c).as_bgr(), np.float32)
            pixels = region[m].astype(np.float32)
            region[m] = (pixels * (1 - opacity) + color * opacity).astype(np.uint8)

    def annotate(self, result: Result) -> np.ndarray:
        """The result's frame with its detections drawn (per the config's switches)."""
        if result.image is None:
            raise VidpipeError("video sink: the result carries no frame")
        cfg = self.config
        image = result.image.copy()
        dets = result.detections
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
        return image

    def write(self, result: Result) -> None:
        if result.image is None:
            raise VidpipeError("video sink: the result carries no frame")
        writer = self.writers.get(result.stream_id)
        if writer is None:
            writer = self.writers[result.stream_id] = _StreamWriter(self._path(result.stream_id), result.width,
                                                                    result.height, self.config.fps, self.config.crf)
        writer.write(self.annotate(result))

    def end_stream(self, eos: EndOfStream) -> None:
        writer = self.writers.pop(eos.stream_id, None)
        if writer is not None:
            writer.close()
            log.info("wrote %s (%d frames)", writer.path, writer.frames)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
