"""Matching tracks to detections: the Hungarian method on a cost matrix, mask IoU (and a
track's mask scaled to a box), and the duplicate filter of the recovery rounds.

Kept apart from the tracker so that each association round reads as one call, and so
other trackers can reuse the matching.

Example:
    >>> rows, cols = associate(np.array([[0.1, 0.9], [0.8, 0.95]]), threshold=0.5)
    >>> rows.tolist(), cols.tolist()
    ([0], [0])
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.vision.geometry import box_iou

#: skip_duplicates: a detection overlapping one already matched this frame at this IoU is
#: the same object boxed twice (class-aware NMS keeps one box per class).
DUPLICATE_IOU = 0.5


def associate(cost: np.ndarray, threshold: float, objective: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching; pairs with cost above ``threshold`` are not matches. The
    assignment minimises ``objective`` when given (the cost plus terms that should choose
    between candidates but not decide whether a pair may match at all).
    Returns (row indices, column indices) of the matches."""
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(cost if objective is None else objective)
    ok = cost[rows, cols] <= threshold
    return rows[ok], cols[ok]


def mask_iou_matrix(
    boxes_a: np.ndarray,
    masks_a: Sequence[np.ndarray | None],
    boxes_b: np.ndarray,
    masks_b: Sequence[np.ndarray | None],
    box_iou: np.ndarray,
) -> np.ndarray:
    """Mask IoU for the pairs whose boxes overlap (others stay 0: no overlap, no mask
    overlap, so the pixel loop only runs where it can matter). Masks are crops at the
    integer boxes ``boxes_*`` (x0, y0, x1, y1); a pair missing a mask keeps its box IoU."""
    out = np.zeros_like(box_iou)
    for i, j in zip(*np.nonzero(box_iou > 0)):
        ma, mb = masks_a[i], masks_b[j]
        if ma is None or mb is None:
            out[i, j] = box_iou[i, j]
            continue
        out[i, j] = _crop_iou(ma, boxes_a[i, 0], boxes_a[i, 1], mb, boxes_b[j, 0], boxes_b[j, 1])
    return out


def _crop_iou(ma: np.ndarray, ax0: int, ay0: int, mb: np.ndarray, bx0: int, by0: int) -> float:
    """IoU of two mask crops placed at (ax0, ay0) and (bx0, by0) in the image."""
    x0, y0 = max(ax0, bx0), max(ay0, by0)
    x1, y1 = min(ax0 + ma.shape[1], bx0 + mb.shape[1]), min(ay0 + ma.shape[0], by0 + mb.shape[0])
    inter = 0
    if x1 > x0 and y1 > y0:
        inter = int(np.logical_and(ma[y0 - ay0 : y1 - ay0, x0 - ax0 : x1 - ax0], mb[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]).sum())
    union = int(ma.sum()) + int(mb.sum()) - inter
    return inter / union if union else 0.0


def not_duplicates(xyxy: np.ndarray, candidates: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """The detections ``candidates`` (indices into ``xyxy``) that do not overlap a detection
    already matched this frame (bool mask ``matched``) at IoU ≥ DUPLICATE_IOU. Such a
    detection is the same object boxed twice: it would bring a lost track back onto an
    object already tracked, or start a second track that later takes the object over."""
    taken = np.flatnonzero(matched)
    if not len(candidates) or not len(taken):
        return candidates
    return candidates[box_iou(xyxy[candidates], xyxy[taken]).max(axis=1) < DUPLICATE_IOU]


def scale_mask(mask: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A track's last mask scaled to ``box`` (x0, y0, x1, y1 integers)."""
    w, h = int(box[2] - box[0]), int(box[3] - box[1])
    if w <= 0 or h <= 0:
        return np.zeros((max(h, 0), max(w, 0)), bool)
    if mask.shape == (h, w):
        return mask
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
