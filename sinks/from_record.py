"""A result's detections rebuilt from its ``vidpipe.result/1`` record, in any of the
three formats: boxes, masks (cropped to their boxes), a pose model's keypoints, a
classification model's classes and a semantic segmentation model's class map.

Example:
    >>> from pipeline.wire.records import SCHEMA
    >>> dets = detections_from_record({"schema": SCHEMA, "stream": "cam0", "frame": 0, "width": 64, "height": 48,
    ...     "keypoint_names": ["tip", "tail"],
    ...     "detections": [{"bounding-box": {"left": 2, "top": 3, "width": 4, "height": 5}, "category": "arrow",
    ...                     "class_id": 0, "score": 0.9, "track_id": 7, "keypoints": [[3, 4, 0.9], [5, 7, 0.8]]}]})
    >>> dets.keypoints.shape, dets.keypoint_names
    ((1, 2, 3), ('tip', 'tail'))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.vision import rle
from pipeline.vision.classification import Classification
from pipeline.vision.detections import Detections
from pipeline.vision.geometry import mask_boxes
from pipeline.vision.semantic import SemanticSegments
from pipeline.wire.parse import Bitmask, Polygon, ResultRecord, WireError, parse_record
from pipeline.wire.parse_tasks import WireClassification, WireSemantic

#: The class of pixels a semantic record reports no class for (Instill stuffs and RLEs
#: that leave pixels uncovered).
NO_CLASS = -1


def detections_from_record(rec: dict[str, Any] | ResultRecord) -> Detections:
    """Detections (masks cropped to boxes) from a record in any of the three formats: a
    decoded JSON object (checked by :func:`parse_record`) or a parsed record. A record
    that is not ``vidpipe.result/1`` raises :class:`WireError` naming the field."""
    record = rec if isinstance(rec, ResultRecord) else parse_record(rec)
    h, w = record.require_image_hw()
    wire = record.detections
    xyxy = wire.xyxy.copy()
    masks = None
    full = _full_masks(record, h, w)
    if full is not None:
        _grow_boxes_to_masks(xyxy, full, (h, w))
        masks = [m[b[1]:b[3], b[0]:b[2]] for m, b in zip(full, mask_boxes(xyxy, (h, w)))]
    return Detections(xyxy, wire.confidence, wire.class_id, (h, w), masks, wire.tracker_id,
                      _class_names(wire.class_id, wire.category), keypoints=wire.keypoints,
                      keypoint_names=record.keypoint_names,
                      classification=_classification(record.classification),
                      semantic=_semantic(record.semantic, (h, w), "stuffs" if record.format == "instill" else "semantic"))


def _check_rles(record: ResultRecord) -> None:
    """Every RLE of the record decodes (cheap: run lengths only), or a WireError naming it,
    so a message is rejected when it arrives, not when its masks are read."""
    payloads: list[tuple[str, Any]] = [(f"{record.detections_key}.{i}.rle", p)
                                       for i, p in enumerate(record.detections.masks or ())]
    if record.semantic is not None:
        key = "stuffs" if record.format == "instill" else "semantic"
        payloads += [(f"{key}.{i}.rle", seg.rle) for i, seg in enumerate(record.semantic.segments)]
    for where, payload in payloads:
        if isinstance(payload, dict):
            try:
                rle.counts_of(dict(payload))
            except ValueError as exc:
                raise WireError(f"{where}: {exc}", where) from None


def _full_masks(record: ResultRecord, h: int, w: int) -> list[np.ndarray] | None:
    """Full-frame masks when every detection carries a raster mask (RLE or bitmask)."""
    payloads = record.detections.masks
    if not payloads or any(m is None or isinstance(m, Polygon) for m in payloads):
        return None
    full = []
    for i, payload in enumerate(payloads):
        if isinstance(payload, Bitmask):
            m = np.zeros((h, w), bool)
            x0, y0, x1, y1 = payload.box
            m[y0:y1, x0:x1] = payload.mask
        elif isinstance(payload, dict):
            try:
                m = rle.decode(dict(payload))
            except ValueError as exc:
                where = f"{record.detections_key}.{i}.rle"
                raise WireError(f"{where}: {exc}", where) from None
        else:  # pragma: no cover - excluded above
            return None
        full.append(m)
    return full


def _grow_boxes_to_masks(xyxy: np.ndarray, full: list[np.ndarray], image_hw: tuple[int, int]) -> None:
    """A box rounded inside its mask's pixel range (centre/size formats) grows just
    enough for the crop to keep every mask pixel (in place)."""
    px = mask_boxes(xyxy, image_hw)
    for i, m in enumerate(full):
        ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        if len(ys):
            if xs[0] < px[i, 0]:
                xyxy[i, 0] = xs[0]
            if ys[0] < px[i, 1]:
                xyxy[i, 1] = ys[0]
            if xs[-1] + 1 > px[i, 2]:
                xyxy[i, 2] = xs[-1] + 1
            if ys[-1] + 1 > px[i, 3]:
                xyxy[i, 3] = ys[-1] + 1


def _class_names(class_id: np.ndarray, category: Sequence[str]) -> list[str]:
    """Class names by id, as far as the message tells them."""
    return _names_by_id({int(c): n for c, n in zip(class_id.tolist(), category) if c >= 0})


def _names_by_id(by_id: Mapping[int, str]) -> list[str]:
    return [by_id.get(i, str(i)) for i in range(max(by_id) + 1)] if by_id else []


def _classification(wire: WireClassification | None) -> Classification | None:
    """A classification; classes sent without an id (Instill's top class) are numbered
    by their rank, named as sent."""
    if wire is None:
        return None
    ids = np.where(wire.class_id >= 0, wire.class_id, np.arange(len(wire)))
    return Classification(ids, wire.confidence, _class_names(ids, wire.category))


def _semantic(wire: WireSemantic | None, image_hw: tuple[int, int], key: str) -> SemanticSegments | None:
    """The class map of semantic segments: Roboflow's as sent, else painted from each
    class's RLE (segments sent without an id, Instill's, numbered in order; pixels no
    segment covers are :data:`NO_CLASS`)."""
    if wire is None:
        return None
    if wire.class_map is not None:
        return SemanticSegments(wire.class_map, _names_by_id(wire.names or {}), confidence=wire.confidence)
    class_map = np.full(image_hw, NO_CLASS, np.int64)
    by_id: dict[int, str] = {}
    for i, seg in enumerate(wire.segments):
        class_id = seg.class_id if seg.class_id >= 0 else i
        by_id[class_id] = seg.category or str(class_id)
        try:
            class_map[rle.decode(dict(seg.rle))] = class_id
        except ValueError as exc:
            raise WireError(f"{key}.{i}.rle: {exc}", f"{key}.{i}.rle") from None
    return SemanticSegments(class_map, _names_by_id(by_id), ignore_index=NO_CLASS)
