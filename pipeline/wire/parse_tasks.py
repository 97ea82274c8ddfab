"""Decoding the per-task parts of a ``vidpipe.result/1`` record (:mod:`pipeline.wire.tasks`
writes them): a detection's keypoints, a classification and semantic segments, in each
output format. Problems raise :class:`~pipeline.wire.checks.WireError` naming the field.

Example:
    >>> _keypoints_list([[1, 2, 0.5], [3, 4, 0.25]], "detections.0.keypoints").tolist()
    [[1.0, 2.0, 0.5], [3.0, 4.0, 0.25]]
    >>> c = classification_of({"classification": {"predictions": [{"class": "dog", "class_id": 1,
    ...                        "confidence": 0.7}]}}, "vidpipe")
    >>> c.category, c.class_id.tolist()
    (('dog',), [1])
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.wire.checks import _at, _fail, _integer, _list, _nullable, _number, _object, _optional, _required, _show, _string
from pipeline.wire.parse_masks import CocoRle, _rle

#: Bounds on the indices a record may send: names are listed up to the highest id, and
#: a keypoint array is as wide as the highest keypoint index.
MAX_CLASS_ID = 65535
MAX_KEYPOINTS = 1024


def _bounded(check_max: int, allow_unset: bool = False) -> Callable[[object, str], int]:
    """An integer check with bounds (-1 allowed for "not sent" when ``allow_unset``)."""
    low = -1 if allow_unset else 0

    def check(value: object, path: str) -> int:
        number = _integer(value, path)
        if not low <= number <= check_max:
            raise _fail(path, f"expected an integer in {low}..{check_max}, got {_show(value)}")
        return number

    return check


_class_id = _bounded(MAX_CLASS_ID, allow_unset=True)
_keypoint_index = _bounded(MAX_KEYPOINTS - 1)


@dataclass(frozen=True, eq=False)
class WireClassification:
    """A classification as sent: ``class_id`` (k,) int64 (-1: not sent), ``confidence``
    (k,) float64 and ``category`` names, best first."""

    class_id: npt.NDArray[np.int64]
    confidence: npt.NDArray[np.float64]
    category: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.class_id)


@dataclass(frozen=True, eq=False)
class WireSegment:
    """One class's full-frame mask (COCO RLE) with its id (-1: not sent), name and share
    of the frame (None: not sent)."""

    class_id: int
    category: str
    share: float | None
    rle: CocoRle


@dataclass(frozen=True, eq=False)
class WireSemantic:
    """Semantic segments as sent: one RLE per class (``vidpipe``, ``instill``), or the
    class of each pixel (``roboflow``: ``class_map`` (H, W), ``confidence`` (H, W) in
    [0, 1], ``names`` by class id)."""

    segments: tuple[WireSegment, ...] = ()
    class_map: npt.NDArray[np.int64] | None = None
    confidence: npt.NDArray[np.float32] | None = None
    names: Mapping[int, str] | None = None


# -- keypoints -----------------------------------------------------------------------------


def _keypoints_list(value: object, path: str) -> npt.NDArray[np.float64]:
    """``[[x, y, confidence], ...]`` (vidpipe) as a (K, 3) array."""
    rows = _list(value, path)
    if len(rows) > MAX_KEYPOINTS:
        raise _fail(path, f"more than {MAX_KEYPOINTS} keypoints")
    out = np.zeros((len(rows), 3))
    for k, row in enumerate(rows):
        where = _at(path, k)
        items = _list(row, where)
        if len(items) != 3:
            raise _fail(where, f"expected [x, y, confidence], got {_show(row)}")
        out[k] = [_number(v, _at(where, j)) for j, v in enumerate(items)]
    return out


def _keypoint_objects(value: object, path: str, conf_key: str) -> list[tuple[int, float, float, float]]:
    """Roboflow's ``{x, y, confidence, class_id}`` or Instill's ``{x, y, v}`` keypoints as
    (index, x, y, confidence); the index is ``class_id`` when sent, else the position."""
    out = []
    for k, item in enumerate(_list(value, path)):
        where = _at(path, k)
        p = _object(item, where)
        index = _optional(p, "class_id", where, _keypoint_index, min(k, MAX_KEYPOINTS - 1))
        out.append((index, _required(p, "x", where, _number), _required(p, "y", where, _number),
                    _required(p, conf_key, where, _number)))
    return out


def keypoints_of(d: Mapping[str, Any], path: str, fmt: str) -> list[tuple[int, float, float, float]] | None:
    """One detection's keypoints as (index, x, y, confidence), or None when it has none."""
    value = d.get("keypoints")
    if value is None:
        return None
    where = _at(path, "keypoints")
    if fmt == "vidpipe":
        return [(k, *row) for k, row in enumerate(_keypoints_list(value, where).tolist())]
    if len(_list(value, where)) > MAX_KEYPOINTS:
        raise _fail(where, f"more than {MAX_KEYPOINTS} keypoints")
    return _keypoint_objects(value, where, "confidence" if fmt == "roboflow" else "v")


def keypoint_array(rows: list[list[tuple[int, float, float, float]] | None], key: str,
                   names: tuple[str, ...]) -> npt.NDArray[np.float64] | None:
    """(N, K, 3) keypoints of a record's detections (K: the names sent, else the highest
    index + 1); keypoints not sent are (0, 0, 0). None when no detection has any."""
    if all(r is None for r in rows):
        return None
    k = max([len(names), *(i + 1 for r in rows if r for i, *_ in r)])
    out = np.zeros((len(rows), k, 3))
    for n, r in enumerate(rows):
        for i, x, y, c in r or ():
            if names and i >= len(names):
                raise _fail(_at(_at(key, n), "keypoints"), f"keypoint {i} of {len(names)} named in keypoint_names")
            out[n, i] = (x, y, c)
    return out


# -- classification ------------------------------------------------------------------------


def _class_predictions(value: object, path: str) -> WireClassification:
    ids, conf, names = [], [], []
    for i, item in enumerate(_list(value, path)):
        where = _at(path, i)
        p = _object(item, where)
        names.append(_optional(p, "class", where, _string, ""))
        ids.append(_optional(p, "class_id", where, _class_id, -1))
        conf.append(_required(p, "confidence", where, _number))
    return WireClassification(np.array(ids, np.int64), np.array(conf, np.float64), tuple(names))


def classification_of(rec: Mapping[str, Any], fmt: str) -> WireClassification | None:
    """The record's classification, or None (not a classification model's)."""
    if fmt == "roboflow":
        if "top" not in rec:
            return None
        _string(rec["top"], "top")
        _optional(rec, "confidence", "", _number, 0.0)
        return _class_predictions(rec.get("predictions"), "predictions")
    if fmt == "instill":
        if "category" not in rec:
            return None
        top = _string(rec["category"], "category")
        score = _required(rec, "score", "", _number)
        return WireClassification(np.array([-1], np.int64), np.array([score]), (top,))
    if rec.get("classification") is None:
        return None
    obj = _object(rec["classification"], "classification")
    _nullable(obj, "top", "classification", _string)
    _nullable(obj, "confidence", "classification", _number)
    return _class_predictions(obj.get("predictions"), "classification.predictions")


# -- semantic segments ---------------------------------------------------------------------


def _png(value: object, path: str, flags: int) -> npt.NDArray[Any]:
    try:
        data = base64.b64decode(_string(value, path), validate=True)
    except binascii.Error:
        raise _fail(path, "not base64") from None
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    except cv2.error:
        image = None
    if image is None or image.ndim != 2:
        raise _fail(path, "not a base64 single-channel PNG")
    return image


def _roboflow_semantic(value: object, image_hw: tuple[int, int] | None) -> WireSemantic:
    obj = _object(value, "predictions")
    class_map = _png(_required(obj, "segmentation_mask", "predictions", lambda v, p: v),
                     "predictions.segmentation_mask", cv2.IMREAD_UNCHANGED).astype(np.int64)
    if image_hw is not None and class_map.shape != image_hw:
        raise _fail("predictions.segmentation_mask", f"a {class_map.shape[1]}x{class_map.shape[0]} mask for a "
                    f"{image_hw[1]}x{image_hw[0]} frame")
    names = {}
    for key, name in _required(obj, "class_map", "predictions", _object).items():
        where = _at("predictions.class_map", key)
        if not (key.isascii() and key.isdigit() and int(key) <= MAX_CLASS_ID):
            raise _fail(where, f"expected a pixel value (0..{MAX_CLASS_ID}) as key, got {_show(key)}")
        names[int(key)] = _string(name, where)
    confidence: npt.NDArray[np.float32] | None = None
    if obj.get("confidence_mask") is not None:
        conf = _png(obj["confidence_mask"], "predictions.confidence_mask", cv2.IMREAD_GRAYSCALE)
        if conf.shape != class_map.shape:
            raise _fail("predictions.confidence_mask", "not the size of the segmentation mask")
        confidence = (conf / 255).astype(np.float32)
    return WireSemantic(class_map=class_map, confidence=confidence, names=names)


def _segments(value: object, path: str, image_hw: tuple[int, int] | None, fmt: str) -> WireSemantic:
    out = []
    for i, item in enumerate(_list(value, path)):
        where = _at(path, i)
        s = _object(item, where)
        if fmt == "instill":
            out.append(WireSegment(-1, _required(s, "category", where, _string), None,
                                   _rle(_required(s, "rle", where, lambda v, p: v), _at(where, "rle"), image_hw)))
            continue
        share = _nullable(s, "share", where, _number)
        if share is not None and not 0 <= share <= 1:
            raise _fail(_at(where, "share"), f"expected a fraction in [0, 1], got {share}")
        out.append(WireSegment(_optional(s, "class_id", where, _class_id, -1), _optional(s, "class", where, _string, ""),
                               share, _rle(_required(s, "rle", where, lambda v, p: v), _at(where, "rle"), image_hw)))
    return WireSemantic(segments=tuple(out))


def semantic_of(rec: Mapping[str, Any], fmt: str, image_hw: tuple[int, int] | None) -> WireSemantic | None:
    """The record's semantic segments, or None (not a semantic segmentation model's)."""
    if fmt == "roboflow":
        return _roboflow_semantic(rec["predictions"], image_hw) if isinstance(rec.get("predictions"), dict) else None
    key = "stuffs" if fmt == "instill" else "semantic"
    return None if rec.get(key) is None else _segments(rec[key], key, image_hw, fmt)
