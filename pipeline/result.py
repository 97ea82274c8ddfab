"""One frame's result and its JSON record in the ``vidpipe.result/1`` schema (DESIGN.md).

Example:
    >>> import numpy as np
    >>> from pipeline.detections import Detections
    >>> r = Result("cam0", 3, 0.1, 1700000000.0, 48, 64, "m", Detections.empty((48, 64)))
    >>> rec = to_record(r)
    >>> rec["schema"], rec["stream"], rec["frame"], rec["detections"]
    ('vidpipe.result/1', 'cam0', 3, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.detections import Detections

SCHEMA = "vidpipe.result/1"
FORMATS = ("vidpipe", "roboflow", "instill")


@dataclass
class Result:
    stream_id: str
    frame_index: int
    pts: float | None
    captured_at: float
    width: int
    height: int
    model: str
    detections: Detections
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage
    latency_ms: float = 0.0  # capture (arrival) to result
    drops: dict[str, int] = field(default_factory=dict)
    inferred: bool = True  # False: boxes carried by the tracker (infer_interval)
    gap: bool = False  # first result after a reconnect or skipped stretch
    image: np.ndarray | None = None  # the frame (BGR), for annotating sinks
    is_control = False

    def to_supervision(self, masks: bool = True):
        return self.detections.to_supervision(masks=masks)


def _detection_records(dets: Detections, mask_format: str, polygon_precision: float) -> list[dict[str, Any]]:
    n = len(dets)
    if n == 0:
        return []
    xyxy = dets.xyxy.astype(np.float64)
    rles = dets.rle() if mask_format == "rle" and dets.masks is not None else None
    polys = dets.polygons(polygon_precision) if mask_format == "polygon" and dets.masks is not None else None
    names = dets.category
    out = []
    for i in range(n):
        x0, y0, x1, y1 = xyxy[i]
        rec: dict[str, Any] = {
            "bounding-box": {"left": round(x0, 2), "top": round(y0, 2), "width": round(x1 - x0, 2), "height": round(y1 - y0, 2)},
            "category": names[i],
            "class_id": int(dets.class_id[i]),
            "score": round(float(dets.confidence[i]), 4),
            "track_id": int(dets.tracker_id[i]),
        }
        if rles is not None:
            rec["rle"] = rles[i]
        if polys is not None:
            rec["polygon"] = [ring.tolist() for ring in polys[i]]
        out.append(rec)
    return out


def to_record(result: Result, mask_format: str = "rle", polygon_precision: float = 1.0, seq: int | None = None) -> dict[str, Any]:
    """The ``vidpipe.result/1`` JSON object of a result (``seq`` is added on the wire)."""
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
        "detections": _detection_records(result.detections, mask_format, polygon_precision),
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "latency_ms": round(result.latency_ms, 3),
        "drops": dict(result.drops),
    }
    if result.gap:
        rec["gap"] = True
    if seq is not None:
        rec["seq"] = seq
    return rec
