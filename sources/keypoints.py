"""Exact keypoints of the synthetic world's shapes: the centre and four points of the outline.

K = 5 per object, in this order: the centre (a circle's centre, a polygon's area centroid)
and the points where the vertical and horizontal lines through the centre meet the whole,
unoccluded outline: above it (top), to its right, below it (bottom) and to its left (exact
from the geometry after rotation). They move continuously as a shape turns; the outline's
extreme points, an earlier definition, jump a whole side when a rectangle's edge passes
the horizontal, which no detector can see in the pixels. For a circle both are the same.
Frame coordinates put pixel i's centre at i + 0.5 (as the boxes and the letterbox do).
Visibility as COCO writes it: 2 where the object itself shows at the point, 1 where
another object hides it, 0 (and x = y = 0) outside the frame.

Example:
    >>> pts = shape_keypoints(None, 50.0, 40.0, 10.0)  # a circle of radius 10
    >>> pts.tolist()
    [[50.0, 40.0], [50.0, 30.0], [60.0, 40.0], [50.0, 50.0], [40.0, 40.0]]
    >>> diamond = np.array([[2, 0], [4, 2], [2, 4], [0, 2]], float)  # a square turned 45 degrees
    >>> shape_keypoints(diamond, 2.0, 2.0, 0.0)[1:].tolist()
    [[2.0, 0.0], [4.0, 2.0], [2.0, 4.0], [0.0, 2.0]]
    >>> tilted = np.array([[0, 1], [4, 0], [5, 4], [1, 5]], float)  # centre (2.5, 2.5)
    >>> shape_keypoints(tilted, 0.0, 0.0, 0.0)[1].round(3).tolist()  # on the top edge, not its corner
    [2.5, 0.375]
"""

from __future__ import annotations

import numpy as np

KEYPOINT_NAMES: tuple[str, ...] = ("centre", "top", "right", "bottom", "left")
# COCO style, 1-based: the centre joined to each outline point.
SKELETON: tuple[tuple[int, int], ...] = ((1, 2), (1, 3), (1, 4), (1, 5))
# Keypoints that trade places under a flip (training augmentation).
FLIP_X = (0, 1, 4, 3, 2)  # left <-> right
FLIP_Y = (0, 3, 2, 1, 4)  # top <-> bottom
# Directions from the centre, in keypoint order: up, right, down, left (image y points down).
_DIRECTIONS = np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
_INWARD = 1.5  # px: a point on the outline is judged by the shape's own pixel just inside it


def shape_keypoints(outline: np.ndarray | None, cx: float, cy: float, radius: float) -> np.ndarray:
    """(5, 2) float64 keypoints (x, y) in frame pixels of a polygon ``outline`` (V, 2), or of
    a circle of ``radius`` centred on (cx, cy) when ``outline`` is None."""
    if outline is None:
        return np.array([[cx, cy], [cx, cy - radius], [cx + radius, cy], [cx, cy + radius], [cx - radius, cy]])
    pts = np.asarray(outline, np.float64)
    out = np.empty((5, 2))
    out[0] = centre = _centroid(pts)
    for row, direction in enumerate(_DIRECTIONS, start=1):
        out[row] = centre + _ray_to_outline(pts, centre, direction) * direction
    return out


def _ray_to_outline(pts: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> float:
    """Distance from ``origin`` (inside the polygon) along the unit ``direction`` to the first
    edge it crosses: solves origin + t·d = p + s·(q − p) for every edge (p, q) at once."""
    edge = np.roll(pts, -1, axis=0) - pts
    rel = pts - origin
    denom = direction[0] * edge[:, 1] - direction[1] * edge[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rel[:, 0] * edge[:, 1] - rel[:, 1] * edge[:, 0]) / denom
        s = (rel[:, 0] * direction[1] - rel[:, 1] * direction[0]) / denom
    hit = (np.abs(denom) > 1e-12) & (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 0)
    return float(t[hit].min()) if hit.any() else 0.0


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
