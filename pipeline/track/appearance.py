"""Appearance for re-identification: each detection's mean colour, read from the frame it
was found in, inside its mask (or, for a model without masks, the central half of its box,
where the object rather than the background is).

A lost object that comes back where its motion did not put it (it turned or changed speed
while hidden, or its velocity was measured on boxes cut by other objects) is found again
by motion alone only when it stays close to that extrapolation. Its colour is independent
of all that: the tracker keeps each track's mean colour (an exponential average of its
observations) and may re-identify a lost track with a detection of nearly the same colour
within reach of where it should be (:mod:`pipeline.track.bytetrack`, round 4). It is a
cheap cue, not a learned embedding: objects of similar colours are told apart by motion
alone, as before.

Example:
    >>> from pipeline.vision.detections import Detections
    >>> image = np.zeros((40, 40, 3), np.uint8); image[10:20, 10:20] = (200, 100, 50)
    >>> dets = Detections([[10, 10, 20, 20]], [0.9], [0], (40, 40), masks=[np.ones((10, 10), bool)])
    >>> mean_colours(image, dets).tolist()
    [[200.0, 100.0, 50.0]]
    >>> colour_distance(np.array([[200.0, 100, 50]]), np.array([[200.0, 103, 54], [np.nan] * 3])).round(1).tolist()
    [[5.0, inf]]
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pipeline.vision.detections import Detections

#: Weight of a new observation in a track's mean colour (the rest: what it had).
COLOUR_GAIN = 0.3
#: Pixels read per detection, about: a large mask is read on a sparser grid (every
#: step-th row and column), since its mean colour settles long before its last pixel.
SAMPLES = 256
#: Re-identification by appearance: the cost's shares for the colour distance and for the
#: distance from the expected place (:func:`colour_reid_cost`).
REID_COLOUR_WEIGHT, REID_REACH_WEIGHT = 0.5, 0.2


# One signature of any-layout arrays, compiled at import (or loaded from the cache), so no
# warm-up call is needed: the frames PyAV decodes are padded views at some widths (720,
# 854), the pipeline's masks are column-major, and a lazily typed kernel would compile
# again on the first such frame.
@njit("void(uint8[:, :, :], boolean[:, :], int64, int64, int64, float64[:])", cache=True, nogil=True)
def _masked_mean(image, mask, x0, y0, step, out):  # pragma: no cover - numba
    """out[:] = the mean BGR of ``image`` where ``mask`` (its top-left at x0, y0) is set,
    read on every ``step``-th row and column; NaN when no pixel read is set and inside."""
    h, w = image.shape[0], image.shape[1]
    b = g = r = 0.0
    n = 0
    for y in range(0, mask.shape[0], step):
        iy = y0 + y
        if iy < 0 or iy >= h:
            continue
        for x in range(0, mask.shape[1], step):
            ix = x0 + x
            if mask[y, x] and 0 <= ix < w:
                px = image[iy, ix]
                b += px[0]
                g += px[1]
                r += px[2]
                n += 1
    if n:
        out[0], out[1], out[2] = b / n, g / n, r / n
    else:
        out[0] = out[1] = out[2] = np.nan


def mean_colours(image: np.ndarray, dets: Detections, rows: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) float64: each detection's mean BGR in ``image`` (H, W, 3 uint8), inside its
    mask when the detections have masks, else in the central half of its box (either read
    on a grid of about SAMPLES pixels); NaN rows for detections with nothing visible, and
    for those not in ``rows`` (indices; default: all)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"mean colours need an H×W×3 uint8 BGR frame, got {image.dtype} {image.shape}")
    out = np.full((len(dets), 3), np.nan)
    rows = np.arange(len(dets)) if rows is None else np.asarray(rows, np.int64)
    if not len(rows):
        return out
    if dets.masks is not None:
        boxes = dets.mask_boxes[rows]
        steps = _steps((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        for i, x0, y0, step in zip(rows.tolist(), boxes[:, 0].tolist(), boxes[:, 1].tolist(), steps.tolist()):
            mask = dets.masks[i]
            if mask.size:  # a mask of 0/1 numbers (a model of one's own) is read as booleans
                _masked_mean(image, mask if mask.dtype == np.bool_ else mask != 0, x0, y0, step, out[i])
        return out
    h, w = image.shape[:2]
    xyxy = dets.xyxy[rows].astype(np.float64)
    quarter = (xyxy[:, 2:] - xyxy[:, :2]) / 4
    inner = np.concatenate([xyxy[:, :2] + quarter, xyxy[:, 2:] - quarter], axis=1)
    inner = np.clip(np.round(inner), 0, [w, h, w, h]).astype(np.int64)
    steps = _steps((inner[:, 2] - inner[:, 0]) * (inner[:, 3] - inner[:, 1]))
    for i, (x0, y0, x1, y1), step in zip(rows.tolist(), inner.tolist(), steps.tolist()):
        if x1 > x0 and y1 > y0:
            out[i] = image[y0:y1:step, x0:x1:step].reshape(-1, 3).mean(axis=0)
    return out


def _steps(pixels: np.ndarray) -> np.ndarray:
    """The grid step that reads about SAMPLES of ``pixels`` (at least 1)."""
    return np.maximum(1, np.sqrt(np.maximum(pixels, 0) / SAMPLES).astype(np.int64))


def colour_distance(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """(T, N) Euclidean BGR distance between tracks' and detections' mean colours; inf
    where either is unknown (NaN)."""
    d = np.linalg.norm(tracks[:, None, :] - dets[None, :, :], axis=2)
    return np.where(np.isnan(d), np.inf, d)


def colour_reid_cost(colour: np.ndarray, far: np.ndarray) -> np.ndarray:
    """(T, N) cost of re-identifying lost tracks as detections by appearance, from their
    colour distances as a share of the threshold (``colour``) and how far each detection is
    from where the track should be as a share of its reach (``far``): half the one and a
    fifth of the other, so that a close colour matches anywhere within reach and a less
    close one only near the expected place; inf at or over the threshold, or out of reach.

    >>> colour_reid_cost(np.array([[0.2, 0.2, 1.0]]), np.array([[0.5, 2.0, 0.5]])).tolist()
    [[0.2, inf, inf]]
    """
    cost = REID_COLOUR_WEIGHT * colour + REID_REACH_WEIGHT * far
    return np.where((colour < 1) & (far <= 1), cost, np.inf)


def blend_colours(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Tracks' mean colours after an observation ``new``: the exponential average, or
    ``new`` where nothing was known, or ``old`` where nothing was seen (NaN rows)."""
    mixed = old + COLOUR_GAIN * (new - old)
    return np.where(np.isnan(old), new, np.where(np.isnan(new), old, mixed))
