"""The detections' layouts of the three output formats, and the box and bitmask codecs
they share.

* ``vidpipe``: ``detections``, each with ``bounding-box`` (left/top/width/height),
  ``category``, ``class_id``, ``score``, ``track_id`` and a mask (``rle``, ``polygon`` or
  ``bitmask``, per ``mask_format``) and, for pose models, ``keypoints``;
* ``roboflow``: ``predictions`` as Roboflow Inference returns them (centre x/y, size,
  ``points`` or ``rle``, ``keypoints``);
* ``instill``: ``objects`` as Instill Model's instance segmentation (``rle`` is the COCO
  compressed counts string alone) or keypoint objects.

Keypoints, classifications and semantic segments: :mod:`pipeline.wire.tasks`.

Example:
    >>> wire_box(10.004, 5.0, 20.001, 7.5)
    {'left': 10.0, 'top': 5.0, 'width': 10.01, 'height': 2.5}
    >>> box_from_wire({'left': 10.0, 'top': 5.0, 'width': 10.01, 'height': 2.5})
    [10.0, 5.0, 20.01, 7.5]
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.wire.protocols import DetectionsView
from pipeline.wire.tasks import instill_keypoints, keypoints_of, roboflow_keypoints, vidpipe_keypoints


def wire_box(x0: float, y0: float, x1: float, y1: float) -> dict[str, float]:
    """``bounding-box`` rounded to 0.01 px *outward*, so the integer pixel range a receiver
    derives (floor of left/top, ceil of right/bottom) is the sender's: masks cropped to
    it line up exactly."""
    left, top = math.floor(x0 * 100) / 100, math.floor(y0 * 100) / 100
    right, bottom = math.ceil(x1 * 100) / 100, math.ceil(y1 * 100) / 100
    return {"left": left, "top": top, "width": round(right - left, 2), "height": round(bottom - top, 2)}


def box_from_wire(b: Mapping[str, float]) -> list[float]:
    """xyxy of a ``bounding-box``; right/bottom rounded back to 0.01 to undo float error."""
    return [b["left"], b["top"], round(b["left"] + b["width"], 2), round(b["top"] + b["height"], 2)]


def encode_bitmask(mask: npt.NDArray[Any], box: npt.NDArray[Any] | Sequence[int]) -> dict[str, Any]:
    """A cropped mask as packed bits (row-major, base64) with its integer box.

    >>> encode_bitmask(np.ones((1, 3), bool), [2, 0, 5, 1])
    {'box': [2, 0, 5, 1], 'bits': '4A=='}
    """
    packed = np.packbits(np.ascontiguousarray(mask))
    return {"box": [int(v) for v in box], "bits": base64.b64encode(packed.tobytes()).decode("ascii")}


def decode_bitmask(data: Mapping[str, Any]) -> npt.NDArray[np.bool_]:
    """The (y1 - y0, x1 - x0) boolean crop of :func:`encode_bitmask`'s dict; ValueError
    (``binascii.Error`` is one) when ``bits`` is not base64 of exactly that many bits.

    >>> decode_bitmask({'box': [2, 0, 5, 1], 'bits': '4A=='}).tolist()
    [[True, True, True]]
    """
    x0, y0, x1, y1 = data["box"]
    bits = np.frombuffer(base64.b64decode(data["bits"], validate=True), np.uint8)
    count = (x1 - x0) * (y1 - y0)
    if len(bits) != (count + 7) // 8:
        raise ValueError(f"{len(bits)} bytes of bits for a {x1 - x0}x{y1 - y0} box, expected {(count + 7) // 8}")
    return np.unpackbits(bits, count=count).reshape(y1 - y0, x1 - x0).astype(bool)


def _tracker_ids(dets: DetectionsView) -> npt.NDArray[np.int64]:
    if dets.tracker_id is None:
        return np.full(len(dets), -1, np.int64)
    return np.asarray(dets.tracker_id, np.int64)


def _masks_as(dets: DetectionsView, mask_format: str, polygon_precision: float) -> dict[str, Sequence[Any]]:
    """Each detection's mask encoded per ``mask_format`` (nothing when there are none)."""
    masks = dets.masks
    if masks is None or mask_format == "none":
        return {}
    if mask_format == "rle":
        return {"rle": dets.rle()}
    if mask_format == "polygon":
        return {"polygon": dets.polygons(polygon_precision)}
    return {"bitmask": [encode_bitmask(m, b) for m, b in zip(masks, dets.mask_boxes)]}


def vidpipe_detections(dets: DetectionsView, mask_format: str = "rle", polygon_precision: float = 1.0) -> list[dict[str, Any]]:
    """``detections`` of the ``vidpipe`` format."""
    n = len(dets)
    if n == 0:
        return []
    xyxy = np.asarray(dets.xyxy, np.float64)
    tracks = _tracker_ids(dets)
    masks = _masks_as(dets, mask_format, polygon_precision)
    names = dets.category
    kps = keypoints_of(dets)
    out = []
    for i in range(n):
        rec: dict[str, Any] = {
            "bounding-box": wire_box(*xyxy[i]),
            "category": names[i],
            "class_id": int(dets.class_id[i]),
            "score": round(float(dets.confidence[i]), 4),
            "track_id": int(tracks[i]),
        }
        for key, values in masks.items():
            rec[key] = [ring.tolist() for ring in values[i]] if key == "polygon" else values[i]
        if kps is not None:
            rec["keypoints"] = vidpipe_keypoints(kps[i])
        out.append(rec)
    return out


def roboflow_predictions(dets: DetectionsView, mask_format: str = "rle", polygon_precision: float = 1.0) -> list[dict[str, Any]]:
    """The layout Roboflow Inference returns for instance segmentation: centre x/y, size,
    ``points`` (largest outer contour) or, with ``mask_format: rle``, ``rle`` + ``mask_format``."""
    n = len(dets)
    if n == 0:
        return []
    masks = _masks_as(dets, mask_format, polygon_precision) if mask_format in ("rle", "polygon") else {}
    tracks = _tracker_ids(dets)
    names = dets.category
    kps, kp_names = keypoints_of(dets), list(getattr(dets, "keypoint_names", ()) or ())
    out = []
    for i in range(n):
        x0, y0, x1, y1 = (float(v) for v in dets.xyxy[i])
        p: dict[str, Any] = {
            "x": round((x0 + x1) / 2, 2), "y": round((y0 + y1) / 2, 2), "width": round(x1 - x0, 2), "height": round(y1 - y0, 2),
            "confidence": round(float(dets.confidence[i]), 4), "class": names[i], "class_id": int(dets.class_id[i]),
            "detection_id": str(uuid.uuid4()),
        }
        if tracks[i] >= 0:
            p["tracker_id"] = int(tracks[i])
        if "polygon" in masks:
            rings = masks["polygon"][i]
            outer = max(rings, key=len) if rings else np.zeros((0, 2), np.int32)
            p["points"] = [{"x": int(x), "y": int(y)} for x, y in outer]
        if "rle" in masks:
            p["rle"] = masks["rle"][i]
            p["mask_format"] = "rle"
        if kps is not None:
            p["keypoints"] = roboflow_keypoints(kps[i], kp_names)
        out.append(p)
    return out


def instill_objects(dets: DetectionsView) -> list[dict[str, Any]]:
    """Instill Model instance segmentation objects (``rle`` is the COCO compressed counts)
    or, for a pose model without masks, keypoint objects (``keypoints``, no ``rle``)."""
    rles: Sequence[Mapping[str, Any] | None] = dets.rle() if dets.masks is not None else [None] * len(dets)
    names = dets.category
    kps = keypoints_of(dets)
    out = []
    for i in range(len(dets)):
        rle = rles[i]
        obj: dict[str, Any] = {
            "bounding-box": wire_box(*(float(v) for v in dets.xyxy[i])),
            "category": names[i], "score": round(float(dets.confidence[i]), 4),
        }
        if kps is not None:
            obj["keypoints"] = instill_keypoints(kps[i])
        if kps is None or rle is not None:
            obj["rle"] = rle["counts"] if rle is not None else None
        out.append(obj)
    return out
