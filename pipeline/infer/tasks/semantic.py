"""Semantic segmentation outputs: a class map ``(B, H, W)`` or scores ``(B, nc, H, W)``.

The map covers the letterboxed model input: its padding is cut off (as Ultralytics crops
masks: ``round(pad ∓ 0.1)`` in map pixels) and the rest resized to the source image by
nearest neighbour (``floor(i * in / out)``, PyTorch's ``nearest``), so every source pixel
gets exactly one class. The index arrays are computed once per source size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.infer.layouts import ModelLayout
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks.base import PostprocessTimings, StreamState, host
from pipeline.vision.detections import Detections
from pipeline.vision.semantic import SemanticSegments


def source_indices(map_hw: tuple[int, int], letterbox: Letterbox) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the map for each source row and column.

    >>> rows, cols = source_indices((4, 4), Letterbox.fit((2, 4), (4, 4)))
    >>> rows.tolist(), cols.tolist()
    ([1, 2], [0, 1, 2, 3])
    """
    mh, mw = map_hw
    gain = min(mh / letterbox.src_h, mw / letterbox.src_w)
    pad_w, pad_h = (mw - letterbox.src_w * gain) / 2, (mh - letterbox.src_h * gain) / 2
    top, left = int(round(pad_h - 0.1)), int(round(pad_w - 0.1))
    bottom, right = mh - int(round(pad_h + 0.1)), mw - int(round(pad_w + 0.1))
    rows = top + np.floor(np.arange(letterbox.src_h) * ((bottom - top) / letterbox.src_h)).astype(np.int64)
    cols = left + np.floor(np.arange(letterbox.src_w) * ((right - left) / letterbox.src_w)).astype(np.int64)
    return np.minimum(rows, bottom - 1), np.minimum(cols, right - 1)


class SemanticDecoder:
    """A class per source pixel; no boxes."""

    task = "semantic"

    def __init__(self, layout: ModelLayout, class_names: Sequence[str]) -> None:
        self.layout = layout
        self.class_names = tuple(class_names)
        self._indices: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}

    def class_map(self, output: np.ndarray) -> np.ndarray:
        """The (H, W) class map of one image's output, in the smallest integer type that fits."""
        if output.ndim == 3:  # scores per class
            output = np.argmax(output, axis=0)
        elif output.dtype.kind == "f":
            output = np.rint(output)
        top = max(int(output.max(initial=0)), len(self.class_names))
        return output.astype(np.uint8 if top < 256 else np.int32, copy=False)

    def decode(self, outputs: Sequence[Any], index: int, letterbox: Letterbox,
               timings: PostprocessTimings | None = None, state: StreamState | None = None) -> Detections:
        small = self.class_map(host(outputs[self.layout.detections_output][index]))
        key = (small.shape, letterbox)
        idx = self._indices.get(key)
        if idx is None:
            idx = self._indices[key] = source_indices((small.shape[0], small.shape[1]), letterbox)
        rows, cols = idx
        full = np.take(np.take(small, rows, axis=0), cols, axis=1)  # rows then columns: 4× faster than one 2-D gather
        dets = Detections.empty((letterbox.src_h, letterbox.src_w), with_masks=False, class_names=self.class_names)
        dets.semantic = SemanticSegments(full, self.class_names)
        return dets
