"""Decoding the masks of ``vidpipe.result/1`` detections: COCO RLE (a dict, or Instill's
bare counts string sized by the record), cropped bitmasks and polygons, each checked and
left as data for the layer that owns the codecs.

Example:
    >>> _rle("PPYo1", "objects.0.rle", (48, 64))
    {'size': [48, 64], 'counts': 'PPYo1'}
    >>> _polygon([[[0, 0], [4, 0], [4, 3]]], "detections.0.polygon").rings[0].shape
    (3, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from pipeline.wire.checks import _at, _fail, _integer, _list, _number, _object, _positive, _required, _show, _string
from pipeline.wire.formats import decode_bitmask


class CocoRle(TypedDict):
    """COCO RLE of a full-frame mask: ``size`` [height, width] and ``counts`` (compressed
    string, or a list of run lengths)."""

    size: list[int]
    counts: str | list[int]


@dataclass(frozen=True, eq=False)
class Bitmask:
    """A mask cropped to its integer ``box`` (x0, y0, x1, y1): (y1 - y0, x1 - x0) booleans."""

    box: tuple[int, int, int, int]
    mask: npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Polygon:
    """A mask as contours: (K, 2) x/y arrays in source pixels (outer rings and holes)."""

    rings: tuple[npt.NDArray[np.float64], ...]


MaskPayload = CocoRle | Bitmask | Polygon


def _rle(value: object, path: str, image_hw: tuple[int, int] | None) -> CocoRle:
    """A COCO RLE dict, or a bare counts string (instill) sized by the record."""
    if isinstance(value, str):
        if image_hw is None:
            raise _fail(path, "a counts string needs the record's width and height")
        value = {"size": list(image_hw), "counts": value}
    obj = _object(value, path)
    size = _required(obj, "size", path, _list)
    if len(size) != 2:
        raise _fail(_at(path, "size"), f"expected [height, width], got {_show(size)}")
    hw = [_positive(v, _at(_at(path, "size"), i)) for i, v in enumerate(size)]
    if image_hw is not None and tuple(hw) != image_hw:
        raise _fail(_at(path, "size"), f"expected {list(image_hw)} (the record's height and width), got {_show(size)}")
    counts = _required(obj, "counts", path, lambda v, p: v)
    if isinstance(counts, str) and counts.isascii():
        return {"size": hw, "counts": counts}
    if isinstance(counts, list):
        runs = [_integer(v, _at(_at(path, "counts"), i)) for i, v in enumerate(counts)]
        if min(runs, default=0) < 0 or sum(runs) != hw[0] * hw[1]:
            raise _fail(_at(path, "counts"), f"run lengths must be non-negative and sum to {hw[0] * hw[1]}")
        return {"size": hw, "counts": runs}
    raise _fail(_at(path, "counts"), f"expected an ASCII string or a list of run lengths, got {_show(counts)}")


def _bitmask(value: object, path: str, image_hw: tuple[int, int] | None) -> Bitmask:
    obj = _object(value, path)
    box = _required(obj, "box", path, _list)
    if len(box) != 4:
        raise _fail(_at(path, "box"), f"expected [x0, y0, x1, y1], got {_show(box)}")
    x0, y0, x1, y1 = (_integer(v, _at(_at(path, "box"), i)) for i, v in enumerate(box))
    h, w = image_hw if image_hw is not None else (y1, x1)
    if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
        raise _fail(_at(path, "box"), f"expected 0 <= x0 <= x1 <= {w}, 0 <= y0 <= y1 <= {h}, got {_show(box)}")
    bits = _required(obj, "bits", path, _string)
    try:
        mask = decode_bitmask({"box": [x0, y0, x1, y1], "bits": bits})
    except ValueError as exc:  # binascii.Error is a ValueError
        raise _fail(_at(path, "bits"), f"not base64 of the box's bits ({exc})") from None
    return Bitmask((x0, y0, x1, y1), mask)


def _ring(value: object, path: str) -> npt.NDArray[np.float64]:
    try:
        ring = np.asarray(_list(value, path), np.float64)
    except (TypeError, ValueError):
        ring = np.zeros((0, 3))
    if ring.size == 0 and ring.ndim == 1:
        ring = ring.reshape(0, 2)
    if ring.ndim != 2 or ring.shape[1] != 2 or not np.isfinite(ring).all():
        raise _fail(path, f"expected a list of [x, y] points, got {_show(value)}")
    return ring


def _polygon(value: object, path: str) -> Polygon:
    return Polygon(tuple(_ring(r, _at(path, i)) for i, r in enumerate(_list(value, path))))


def _points(value: object, path: str) -> Polygon:
    """Roboflow's ``points``: one ring of ``{"x", "y"}`` objects."""
    points = [_object(p, _at(path, i)) for i, p in enumerate(_list(value, path))]
    xy = [[_required(p, "x", _at(path, i), _number), _required(p, "y", _at(path, i), _number)] for i, p in enumerate(points)]
    return Polygon((np.asarray(xy, np.float64).reshape(-1, 2),))
