"""Mask image sink: per frame, one black-and-white PNG of all instance masks
("output mask"), written to ``path`` with ``{stream}`` and ``{frame}`` filled in.

Images of an earlier run (files the template matches) are refused at start unless
``overwrite``; each image is written beside its name and renamed into place, so no image is
ever half-written (a run killed while overwriting leaves new images up to the kill and the
old ones after it).

Example:
    >>> MaskImageSink(MasksSinkConfig(path="out/masks/{stream}/{frame:06d}.png")).template
    'out/masks/{stream}/{frame:06d}.png'
"""

from __future__ import annotations

import glob
import os
import string
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.errors import VidpipeError
from pipeline.core.paths import safe_filename
from pipeline.vision.result import Result
from sinks.base import Sink, check_config
from sinks.config import MasksSinkConfig
from sinks.files import OutputExists, make_folder, partial_path


def union_mask(result: Result) -> np.ndarray:
    """All instance masks of a result OR-ed into one full-frame uint8 image (0 / 255)."""
    out = np.zeros((result.height, result.width), np.uint8)
    dets = result.detections
    if dets.masks is not None:
        for m, b in zip(dets.masks, dets.mask_boxes):
            out[b[1]:b[3], b[0]:b[2]][m] = 255
    return out


def template_glob(template: str, stream: str) -> str:
    """A glob of every image ``template`` writes for ``stream`` (any frame).

    >>> template_glob("out/m[1]/{stream}/{frame:06d}.png", "../cam 0")
    'out/m[[]1]/cam_0/*.png'
    """
    parts = []
    for text, name, _spec, _conv in string.Formatter().parse(template):
        parts.append(glob.escape(text))
        if name == "stream":
            parts.append(glob.escape(safe_filename(stream)))
        elif name is not None:
            parts.append("*")
    return "".join(parts)


def refuse_earlier_images(template: str, stream: str, overwrite: bool, sink: str) -> None:
    """OutputExists (one line) if images ``template`` would write for ``stream`` exist and
    may not be overwritten."""
    if overwrite:
        return
    found = sorted(glob.glob(template_glob(template, stream)))
    if found:
        raise OutputExists(f"sink {sink}: {found[0]} exists ({len(found)} images of an earlier run): "
                           "set overwrite: true on the sink (or run with --overwrite)")


class MaskImageSink(Sink):
    """Writes each result's union mask as a PNG at ``config.path`` (``{stream}``, ``{frame}``)."""

    lossless = True

    def __init__(self, config: MasksSinkConfig, name: str | None = None) -> None:
        self.config = check_config(config, MasksSinkConfig)
        if "{frame" not in config.path:
            raise VidpipeError(f"mask sink path needs a '{{frame}}' placeholder, got {config.path!r}")
        self.template = config.path
        self.name = name or "masks"
        self.written = 0
        self.streams: list[str] = []

    def bind_streams(self, streams: list[str]) -> None:
        self.streams = list(streams)

    def open(self) -> None:
        for stream in self.streams:
            refuse_earlier_images(self.template, stream, self.config.overwrite, self.name)
            make_folder(Path(self.template.format(stream=safe_filename(stream), frame=0)), self.name)

    def write(self, result: Result) -> None:
        # The stream id made safe as a file name: an id never writes outside the sink's folder.
        path = Path(self.template.format(stream=safe_filename(result.stream_id), frame=result.frame_index))
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", union_mask(result))
        if not ok:
            raise OSError(f"cannot encode the mask of frame {result.frame_index}")
        temp = partial_path(path)
        temp.write_bytes(png.tobytes())
        os.replace(temp, path)  # never a half-written image under the final name
        self.written += 1
