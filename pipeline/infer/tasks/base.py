"""The per-task output decoder: raw model outputs of one image → :class:`Detections`.

A model's task (detection, instance segmentation, pose, classification, semantic
segmentation) is recognised once when it loads, and its decoder is chosen then: the
inference stage calls ``decode`` without knowing which task it runs.

Decoders are shared by every stream bound to the model. What a decoder keeps across
frames of one stream (the classification window) lives in a :class:`StreamState` that the
inference stage owns, one per stream, and passes to ``decode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pipeline.infer.letterbox import Letterbox
from pipeline.vision.detections import Detections


@dataclass
class PostprocessTimings:
    """Milliseconds spent in each step of the last call."""

    nms: float = 0.0
    masks: float = 0.0


@dataclass
class StreamState:
    """One stream's decoding state across frames, owned by the inference stage (keyed by
    stream id, dropped at the stream's end); each decoder keeps its part under its own key."""

    values: dict[str, Any] = field(default_factory=dict)


class OutputDecoder(Protocol):
    """Decodes the outputs of one image of a batch."""

    task: str

    def decode(self, outputs: Sequence[Any], index: int, letterbox: Letterbox,
               timings: PostprocessTimings | None = None, state: StreamState | None = None) -> Detections:
        """Detections of image ``index`` of the batch, in that image's source pixels;
        ``state`` is the image's stream's (None: no memory across frames)."""
        ...


def host(array: Any) -> np.ndarray:
    """A host (NumPy) array of an output, wherever the kernels left it (GPU outputs are copied)."""
    copy = getattr(array, "copy_to_host", None)
    return copy() if copy is not None else np.asarray(array)
