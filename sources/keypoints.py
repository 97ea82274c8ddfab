"""Exact keypoints of the synthetic world's shapes: the centre and the four extreme points.

K = 5 per object, in this order: the centre (a circle's centre, a polygon's area centroid)
and the topmost, rightmost, bottommost and leftmost points of the whole, unoccluded
outline (exact from the geometry after rotation; where several vertices tie, their mean,
e.g. the middle of an axis-aligned rectangle's top edge). Frame coordinates put pixel i's
centre at i + 0.5 (as the boxes and the letterbox do). Visibility as COCO writes it:
2 where the object itself shows at the point, 1 where another object hides it, 0 (and
x = y = 0) outside the frame.

Example:
    >>> pts = shape_keypoints(None, 50.0, 40.0, 10.0)  # a circle of radius 10
    >>> pts.tolist()
    [[50.0, 40.0], [50.0, 30.0], [60.0, 40.0], [50.0, 50.0], [40.0, 40.0]]
    >>> square = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)  # axis-aligned: ties
    >>> shape_keypoints(square, 2.0, 2.0, 0.0)[1:].tolist()
    [[2.0, 0.0], [4.0, 2.0], [2.0, 4.0], [0.0, 2.0]]
"""

from __future__ import annotations

import numpy as np

KEYPOINT_NAMES: tuple[str, ...] = ("centre", "top", "right", "bottom", "left")
# COCO style, 1-based: the centre joined to each extreme point.
SKELETON: tuple[tuple[int, int], ...] = ((1, 2), (1, 3), (1, 4), (1, 5))
# Keypoints that trade places under a flip (training augmentation).
FLIP_X = (0, 1, 4, 3, 2)  # left <-> right
FLIP_Y = (0, 3, 2, 1, 4)  # top <-> bottom
_TIE = 1e-6  # px: vertices this close to the extreme count as tied
_INWARD = 1.5  # px: a point on the outline is judged by the shape's own pixel just inside it


def shape_keypoints(outline: np.ndarray | None, cx: float, cy: float, radius: float) -> np.ndarray:
    """(5, 2) float64 keypoints (x, y) in frame pixels of a polygon ``outline`` (V, 2), or of
    a circle of ``radius`` centred on (cx, cy) when ``outline`` is None."""
    if outline is None:
        return np.array([[cx, cy], [cx, cy - radius], [cx + radius, cy], [cx, cy + radius], [cx - radius, cy]])
    pts = np.asarray(outline, np.float64)
    out = np.empty((5, 2))
    out[0] = _centroid(pts)
    for row, (axis, sign) in enumerate(((1, -1), (0, 1), (1, 1), (0, -1)), start=1):
        v = pts[:, axis] * sign
        out[row] = pts[v >= v.max() - _TIE].mean(0)
    return out


def _centroid(pts: np.ndarray) -> np.ndarray:
    """Area centroid of a simple polygon (shoelace)."""
    x, y = pts[:, 0], pts[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2
    if abs(area) < 1e-12:
        return pts.mean(0)
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6 * area)


def keypoint_visibility(points: np.ndarray, owner: np.ndarray, index: int) -> np.ndarray:
    """(5, 3) keypoints (x, y, v) from (5, 2) points and the frame's ``owner`` map (which
    object shows at each pixel; this object is ``index``). The pixel under a point on the
    outline may fall just outside the rasterised shape, so each point is judged at the
    pixel ``_INWARD`` px towards the centre."""
    h, w = owner.shape
    out = np.zeros((len(points), 3))
    centre = points[0]
    for i, (x, y) in enumerate(points):
        if not (0 <= x < w and 0 <= y < h):
            continue  # outside the frame: 0, 0, 0 as COCO writes it
        d = centre - points[i]
        n = float(np.hypot(*d))
        px, py = points[i] + (d / n * min(_INWARD, n) if n > 0 else 0.0)
        ix, iy = min(max(int(px), 0), w - 1), min(max(int(py), 0), h - 1)
        out[i] = (x, y, 2.0 if owner[iy, ix] == index else 1.0)
    return out
