"""A result's JSON record in the ``vidpipe.result/1`` schema (DESIGN.md).

Example:
    >>> from pipeline.vision.detections import Detections
    >>> from pipeline.vision.result import Result
    >>> r = Result("cam0", 3, 0.1, 1700000000.0, 48, 64, "m", Detections.empty((48, 64)))
    >>> rec = to_record(r)
    >>> rec["schema"], rec["stream"], rec["frame"], rec["detections"]
    ('vidpipe.result/1', 'cam0', 3, [])
"""

from __future__ import annotations

import base64
import math
import uuid
from typing import Any, Literal, get_args

import numpy as np

from pipeline.vision.detections import Detections
from pipeline.vision.result import Result

SCHEMA = "vidpipe.result/1"
OutputFormat = Literal["vidpipe", "roboflow", "instill"]
MaskFormat = Literal["rle", "polygon", "bitmask", "none"]
FORMATS: tuple[str, ...] = get_args(OutputFormat)
MASK_FORMATS: tuple[str, ...] = get_args(MaskFormat)


def wire_box(x0: float, y0: float, x1: float, y1: float) -> dict[str, float]:
    """``bounding-box`` rounded to 0.01 px *outward*, so the integer pixel range a receiver
    derives (floor of left/top, ceil of right/bottom) is the sender's: masks cropped to
    it line up exactly."""
    left, top = math.floor(x0 * 100) / 100, math.floor(y0 * 100) / 100
    right, bottom = math.ceil(x1 * 100) / 100, math.ceil(y1 * 100) / 100
    return {"left": left, "top": top, "width": round(right - left, 2), "height": round(bottom - top, 2)}


def box_from_wire(b: dict[str, float]) -> list[float]:
    """xyxy of a ``bounding-box``; right/bottom rounded back to 0.01 to undo float error."""
    return [b["left"], b["top"], round(b["left"] + b["width"], 2), round(b["top"] + b["height"], 2)]


def encode_bitmask(mask: np.ndarray, box: np.ndarray) -> dict[str, Any]:
    """A cropped mask as packed bits (row-major, base64) with its integer box."""
    return {"box": [int(v) for v in box], "bits": base64.b64encode(np.packbits(np.ascontiguousarray(mask))).decode("ascii")}


def decode_bitmask(data: dict[str, Any]) -> np.ndarray:
    x0, y0, x1, y1 = data["box"]
    bits = np.frombuffer(base64.b64decode(data["bits"]), np.uint8)
    return np.unpackbits(bits, count=(x1 - x0) * (y1 - y0)).reshape(y1 - y0, x1 - x0).astype(bool)


def _detection_records(dets: Detections, mask_format: str, polygon_precision: float) -> list[dict[str, Any]]:
    n = len(dets)
    if n == 0:
        return []
    xyxy = dets.xyxy.astype(np.float64)
    rles = dets.rle() if mask_format == "rle" and dets.masks is not None else None
    polys = dets.polygons(polygon_precision) if mask_format == "polygon" and dets.masks is not None else None
    bitmasks = None
    if mask_format == "bitmask" and dets.masks is not None:
        bitmasks = [encode_bitmask(m, b) for m, b in zip(dets.masks, dets.mask_boxes)]
    names = dets.category
    out = []
    for i in range(n):
        rec: dict[str, Any] = {
            "bounding-box": wire_box(*xyxy[i]),
            "category": names[i],
            "class_id": int(dets.class_id[i]),
            "score": round(float(dets.confidence[i]), 4),
            "track_id": int(dets.tracker_id[i]),
        }
        if rles is not None:
            rec["rle"] = rles[i]
        if polys is not None:
            rec["polygon"] = [ring.tolist() for ring in polys[i]]
        if bitmasks is not None:
            rec["bitmask"] = bitmasks[i]
        out.append(rec)
    return out


def _roboflow_predictions(dets: Detections, mask_format: str, polygon_precision: float) -> list[dict[str, Any]]:
    """The layout Roboflow Inference returns for instance segmentation: centre x/y, size,
    ``points`` (largest outer contour) or, with ``mask_format: rle``, ``rle`` + ``mask_format``."""
    n = len(dets)
    if n == 0:
        return []
    rles = dets.rle() if mask_format == "rle" and dets.masks is not None else None
    polys = dets.polygons(polygon_precision) if mask_format == "polygon" and dets.masks is not None else None
    names = dets.category
    out = []
    for i in range(n):
        x0, y0, x1, y1 = (float(v) for v in dets.xyxy[i])
        p: dict[str, Any] = {
            "x": round((x0 + x1) / 2, 2), "y": round((y0 + y1) / 2, 2), "width": round(x1 - x0, 2), "height": round(y1 - y0, 2),
            "confidence": round(float(dets.confidence[i]), 4), "class": names[i], "class_id": int(dets.class_id[i]),
            "detection_id": str(uuid.uuid4()),
        }
        if dets.tracker_id[i] >= 0:
            p["tracker_id"] = int(dets.tracker_id[i])
        if polys is not None:
            rings = polys[i]
            outer = max(rings, key=len) if rings else np.zeros((0, 2), np.int32)
            p["points"] = [{"x": int(x), "y": int(y)} for x, y in outer]
        if rles is not None:
            p["rle"] = rles[i]
            p["mask_format"] = "rle"
        out.append(p)
    return out


def _instill_objects(dets: Detections) -> list[dict[str, Any]]:
    """Instill Model instance segmentation objects; ``rle`` is the COCO compressed counts."""
    rles = dets.rle() if dets.masks is not None else [None] * len(dets)
    names = dets.category
    out = []
    for i in range(len(dets)):
        out.append({
            "bounding-box": wire_box(*(float(v) for v in dets.xyxy[i])),
            "category": names[i], "score": round(float(dets.confidence[i]), 4),
            "rle": rles[i]["counts"] if rles[i] is not None else None,
        })
    return out


def to_record(result: Result, mask_format: str = "rle", polygon_precision: float = 1.0, seq: int | None = None,
              format: str = "vidpipe") -> dict[str, Any]:
    """The JSON object of a result. Every format keeps the ``vidpipe.result/1`` envelope
    (stream, frame, timings, ...); ``format`` picks the detections' layout: ``vidpipe``
    (``detections``), ``roboflow`` (``image`` + ``predictions``) or ``instill``
    (``objects``). ``seq`` is added on the wire."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "stream": result.stream_id,
        "frame": result.frame_index,
        "pts": None if result.pts is None else round(result.pts, 6),
        "captured_at": round(result.captured_at, 6),
        "width": result.width,
        "height": result.height,
        "model": result.model,
        "inferred": result.inferred,
    }
    if format == "vidpipe":
        rec["detections"] = _detection_records(result.detections, mask_format, polygon_precision)
    elif format == "roboflow":
        rec["format"] = "roboflow"
        rec["image"] = {"width": result.width, "height": result.height}
        rec["predictions"] = _roboflow_predictions(result.detections, mask_format, polygon_precision)
    else:
        rec["format"] = "instill"
        rec["objects"] = _instill_objects(result.detections)
    rec["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
    rec["latency_ms"] = round(result.latency_ms, 3)
    rec["drops"] = dict(result.drops)
    rec["stream_state"] = result.stream_state
    if result.gap:
        rec["gap"] = True
    if seq is not None:
        rec["seq"] = seq
    return rec
