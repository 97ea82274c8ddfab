"""What every kernel set shares: mask modes, the candidate set, the :class:`Kernels` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, get_args

import numpy as np

from pipeline.infer.config import MaskDecodeMode

MODE_ACCURATE, MODE_TRADEOFF, MODE_FAST = 0, 1, 2
# The kernels' number for each PostprocessOptions.mask_decode_mode they run, in the Literal's
# order (``ultralytics`` is NumPy, in pipeline.infer.tasks.masks).
MASK_MODES: dict[str, int] = dict(zip(get_args(MaskDecodeMode)[:3], (MODE_ACCURATE, MODE_TRADEOFF, MODE_FAST), strict=True))


@dataclass
class Candidates:
    """Anchors that passed the confidence and class filters, in anchor order.

    ``rows`` holds each candidate's raw output row (or a source they index into) so mask
    coefficients are gathered only for the detections NMS keeps."""

    scores: np.ndarray  # (K,) float32
    classes: np.ndarray  # (K,) int64
    boxes: np.ndarray  # (K, 4) float32 xyxy in model-input pixels
    rows: np.ndarray  # the output (CPU) or the candidates' rows (GPU), in host memory
    index: np.ndarray  # (K,) where each candidate is in ``rows``
    first_coef: int  # column (or channel) of the first mask coefficient in ``rows``
    channels_first: bool

    def __len__(self) -> int:
        return len(self.scores)

    def subset(self, keep: np.ndarray) -> Candidates:
        return Candidates(self.scores[keep], self.classes[keep], self.boxes[keep], self.rows, self.index[keep],
                          self.first_coef, self.channels_first)

    def coefficients(self) -> np.ndarray:
        """(K, nm) float32 mask coefficients of these candidates."""
        if self.channels_first:
            coefs = self.rows[self.first_coef :, self.index].T
        else:
            coefs = self.rows[self.index, self.first_coef :]
        return np.ascontiguousarray(coefs, np.float32)


class MaskCrops(NamedTuple):
    """Decoded masks: column-major uint8 crops, flat, with the (N + 1) offsets of each; and
    where the kernels make them in the same pass, each mask's COCO run lengths over the whole
    frame, flat, with their (N + 1) offsets (None: encode from the crops when asked)."""

    flat: np.ndarray
    offsets: np.ndarray
    runs: np.ndarray | None = None
    run_offsets: np.ndarray | None = None


class Kernels(Protocol):
    """One device's post-processing kernels."""

    device: str  # "cpu" | "cuda"

    def outputs(self, backend: Any, blob: np.ndarray) -> list[Any]:
        """Run ``backend`` on ``blob``; outputs where these kernels read them."""
        ...

    def upload(self, array: np.ndarray) -> Any:
        """A small constant (the class filter) where the kernels read it, once per model."""
        ...

    def candidates(self, output0: Any, channels_first: bool, has_objectness: bool, num_classes: int,
                   num_masks: int, confidence: float, allowed: Any) -> Candidates: ...

    def decode_masks(self, coefs: np.ndarray, protos: Any, mask_boxes: np.ndarray, geometry: np.ndarray,
                     mode: int, tradeoff_factor: float, frame_hw: tuple[int, int]) -> MaskCrops:
        """The masks of ``mask_boxes`` (source pixels) in a ``frame_hw`` frame."""
        ...

    def warm_up(self) -> None: ...
