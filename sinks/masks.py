"""Mask image sink: per frame, one black-and-white PNG of all instance masks
("output mask"), written to ``path`` with ``{stream}`` and ``{frame}`` filled in.

Example:
    >>> MaskImageSink(MasksSinkConfig(path="out/masks/{stream}/{frame:06d}.png")).template
    'out/masks/{stream}/{frame:06d}.png'
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.errors import VidpipeError
from pipeline.core.paths import safe_filename
from pipeline.vision.result import Result
from sinks.base import Sink, check_config
from sinks.config import MasksSinkConfig


def union_mask(result: Result) -> np.ndarray:
    """All instance masks of a result OR-ed into one full-frame uint8 image (0 / 255)."""
    out = np.zeros((result.height, result.width), np.uint8)
    dets = result.detections
    if dets.masks is not None:
        for m, b in zip(dets.masks, dets.mask_boxes):
            out[b[1]:b[3], b[0]:b[2]][m] = 255
    return out


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

    def write(self, result: Result) -> None:
        # The stream id made safe as a file name: an id never writes outside the sink's folder.
        path = Path(self.template.format(stream=safe_filename(result.stream_id), frame=result.frame_index))
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), union_mask(result)):
            raise OSError(f"cannot write {path}")
        self.written += 1
