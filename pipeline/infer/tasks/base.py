"""The per-task output decoder: raw model outputs of one image → :class:`Detections`.

A model's task (instance segmentation, detection; pose, classification and semantic
segmentation to come) is recognised once when it loads, and its decoder is chosen then:
the inference stage calls ``decode`` without knowing which task it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.infer.letterbox import Letterbox
from pipeline.vision.detections import Detections


@dataclass
class PostprocessTimings:
    """Milliseconds spent in each step of the last call."""

    nms: float = 0.0
    masks: float = 0.0


class OutputDecoder(Protocol):
    """Decodes the outputs of one image of a batch."""

    task: str

    def decode(self, outputs: Sequence[Any], index: int, letterbox: Letterbox,
               timings: PostprocessTimings | None = None) -> Detections:
        """Detections of image ``index`` of the batch, in that image's source pixels."""
        ...
