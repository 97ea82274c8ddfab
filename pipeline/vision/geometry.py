"""Box geometry shared by post-processing, tracking and evaluation.

Example:
    >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]])).round(3).tolist()
    [[0.333]]
    >>> mask_boxes(np.array([[0.5, 1.2, 9.1, 8.0]], np.float32), (8, 8)).tolist()
    [[0, 1, 8, 8]]
"""

from __future__ import annotations

import numpy as np
from numba import njit


def mask_boxes(xyxy: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Integer pixel ranges [x0, x1) × [y0, y1) covered by float boxes, clipped to the image."""
    h, w = image_hw
    out = np.empty((len(xyxy), 4), np.int32)
    out[:, 0] = np.clip(np.floor(xyxy[:, 0]), 0, w)
    out[:, 1] = np.clip(np.floor(xyxy[:, 1]), 0, h)
    out[:, 2] = np.clip(np.ceil(xyxy[:, 2]), 0, w)
    out[:, 3] = np.clip(np.ceil(xyxy[:, 3]), 0, h)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0])
    out[:, 3] = np.maximum(out[:, 3], out[:, 1])
    return out


@njit(cache=True, nogil=True)
def _iou_matrix(a, b):  # pragma: no cover
    out = np.zeros((a.shape[0], b.shape[0]), np.float64)
    for i in range(a.shape[0]):
        area_a = max(0.0, a[i, 2] - a[i, 0]) * max(0.0, a[i, 3] - a[i, 1])
        for j in range(b.shape[0]):
            w = min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])
            if w <= 0:
                continue
            h = min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])
            if h <= 0:
                continue
            inter = w * h
            area_b = max(0.0, b[j, 2] - b[j, 0]) * max(0.0, b[j, 3] - b[j, 1])
            out[i, j] = inter / max(area_a + area_b - inter, 1e-9)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    return _iou_matrix(np.ascontiguousarray(a, np.float64).reshape(-1, 4), np.ascontiguousarray(b, np.float64).reshape(-1, 4))


def warm_up() -> None:
    """Compile the IoU kernel now (cached on disk), so no frame pays for it."""
    box_iou(np.zeros((1, 4)), np.zeros((1, 4)))
