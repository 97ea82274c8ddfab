"""A semantic segmentation model's answer for one frame: a class per pixel, reported as
one mask per class present with its share of the frame.

Example:
    >>> import numpy as np
    >>> m = np.zeros((4, 6), np.int64); m[:2, :3] = 2
    >>> s = SemanticSegments(m, class_names=("background", "road", "car"))
    >>> s.class_ids.tolist(), s.category, s.share.round(2).tolist()
    ([0, 2], ['background', 'car'], [0.75, 0.25])
    >>> s.rle()[1]["size"]
    [4, 6]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.vision import rle as rle_codec


@dataclass
class SemanticSegments:
    """``class_map`` (H, W): the class of each source pixel; ``ignore_index`` (if set) marks
    pixels of no class (not reported; it may be negative). ``confidence`` (H, W) floats in
    [0, 1], optional: the model's confidence in each pixel's class, when it gives one."""

    class_map: np.ndarray
    class_names: Sequence[str] = ()
    ignore_index: int | None = None
    confidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.class_map = np.asarray(self.class_map)
        if self.class_map.ndim != 2:
            raise ValueError(f"a class map is (H, W), got shape {self.class_map.shape}")
        if self.confidence is not None:
            self.confidence = np.asarray(self.confidence, np.float32)
            if self.confidence.shape != self.class_map.shape:
                raise ValueError(f"a confidence map of shape {self.confidence.shape} for a class map of {self.class_map.shape}")
        flat = self.class_map.reshape(-1).astype(np.int64, copy=False)
        if self.ignore_index is not None:
            flat = flat[flat != self.ignore_index]  # before counting: a negative index must not count as class 0
        counts = np.bincount(flat.clip(0))
        present = np.flatnonzero(counts)
        self.class_ids = present.astype(np.int64)
        self.share = (counts[present] / max(1, self.class_map.size)).astype(np.float32)

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.class_map.shape[0]), int(self.class_map.shape[1])

    def __len__(self) -> int:
        return len(self.class_ids)

    @property
    def category(self) -> list[str]:
        names = self.class_names
        return [names[c] if 0 <= c < len(names) else str(c) for c in self.class_ids.tolist()]

    def mask(self, class_id: int) -> np.ndarray:
        """(H, W) boolean mask of one class."""
        return self.class_map == class_id

    def rle(self) -> list[dict]:
        """COCO compressed RLE of each present class's mask, in ``class_ids`` order (cached)."""
        cached = self.__dict__.get("_rle")
        if cached is None:
            h, w = self.image_hw
            cached = [rle_codec.encode_crop(self.mask(int(c)), 0, 0, h, w) for c in self.class_ids]
            self.__dict__["_rle"] = cached
        return cached
