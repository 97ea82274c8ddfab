"""Decoding ``vidpipe.result/1``: a JSON object checked field by field into a typed
:class:`ResultRecord`, detections as NumPy arrays and each mask left as data.

Any problem raises :class:`WireError`, whose message starts with the field's path
(``detections.3.score: expected a number, got 'x'``). Only what a record carries is
checked; masks stay encoded (COCO RLE dicts, decoded bitmasks, polygons) for the layer
that owns the codecs.

Example:
    >>> rec = parse_record({"schema": "vidpipe.result/1", "stream": "cam0", "frame": 3, "width": 64, "height": 48,
    ...                     "detections": [{"bounding-box": {"left": 1, "top": 2, "width": 10, "height": 5},
    ...                                     "category": "circle", "class_id": 0, "score": 0.9, "track_id": 4}]})
    >>> rec.stream, rec.frame, rec.detections.xyxy.tolist(), rec.detections.category
    ('cam0', 3, [[1.0, 2.0, 11.0, 7.0]], ('circle',))
    >>> parse_record({"schema": "vidpipe.result/1", "stream": "cam0", "frame": 3,
    ...               "detections": [{"bounding-box": {"left": 1, "top": 2, "width": 10, "height": 5}, "score": "x"}]})
    Traceback (most recent call last):
    ...
    pipeline.wire.checks.WireError: detections.0.score: expected a number, got 'x'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import VidpipeError
from pipeline.wire.checks import WireError as WireError  # re-exported: part of this module's API
from pipeline.wire.checks import (
    _at,
    _boolean,
    _fail,
    _integer,
    _list,
    _mapping_of,
    _nullable,
    _number,
    _object,
    _optional,
    _positive,
    _required,
    _show,
    _size,
    _string,
)
from pipeline.wire.formats import box_from_wire
from pipeline.wire.parse_masks import Bitmask as Bitmask  # re-exported: part of this module's API
from pipeline.wire.parse_masks import CocoRle as CocoRle
from pipeline.wire.parse_masks import MaskPayload as MaskPayload
from pipeline.wire.parse_masks import Polygon as Polygon
from pipeline.wire.parse_masks import _bitmask, _points, _polygon, _rle
from pipeline.wire.parse_tasks import WireClassification, WireSemantic, classification_of, keypoint_array, keypoints_of, semantic_of
from pipeline.wire.records import FORMATS, SCHEMA

#: The key of the detections' list in each output format.
DETECTIONS_KEY: dict[str, str] = {"vidpipe": "detections", "roboflow": "predictions", "instill": "objects"}


@dataclass(frozen=True, eq=False)
class WireDetections:
    """Detections as sent: ``xyxy`` (N, 4) float64, ``confidence`` (N,), ``class_id`` and
    ``tracker_id`` (N,) int64 (-1: not sent / no track), ``category`` names and ``masks``
    (a payload or None per detection), ``keypoints`` (N, K, 3) or None."""

    xyxy: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]
    class_id: npt.NDArray[np.int64]
    tracker_id: npt.NDArray[np.int64]
    category: tuple[str, ...]
    masks: tuple[MaskPayload | None, ...]
    keypoints: npt.NDArray[np.float64] | None = None  # (N, K, 3) x, y, confidence: pose models

    def __len__(self) -> int:
        return len(self.xyxy)


@dataclass(frozen=True, eq=False)
class ResultRecord:
    """A checked ``vidpipe.result/1`` record. ``width``/``height`` are None when the record
    leaves them out; ``raw`` is the JSON object itself. A pose model's keypoints are in
    ``detections.keypoints`` (names: ``keypoint_names``); a classification model's answer
    in ``classification``, a semantic segmentation model's in ``semantic``."""

    stream: str
    frame: int
    width: int | None
    height: int | None
    format: str
    detections: WireDetections
    pts: float | None = None
    captured_at: float = 0.0
    model: str = ""
    inferred: bool = True
    gap: bool = False
    stream_state: str = "streaming"
    timings: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    drops: dict[str, int] = field(default_factory=dict)
    seq: int | None = None
    stream_seq: int | None = None
    publisher: str | None = None
    source_path: str | None = None  # optional (images): records without it still parse
    keypoint_names: tuple[str, ...] = ()  # optional, like the task fields below (issue 15)
    classification: WireClassification | None = None
    semantic: WireSemantic | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def detections_key(self) -> str:
        """The field the detections came from (``detections``, ``predictions`` or ``objects``)."""
        return DETECTIONS_KEY[self.format]

    def require_image_hw(self) -> tuple[int, int]:
        """(height, width); WireError when the record leaves them out."""
        if self.width is None:
            raise _fail("width", "missing")
        if self.height is None:
            raise _fail("height", "missing")
        return self.height, self.width


# -- masks ---------------------------------------------------------------------------------
# -- detections ----------------------------------------------------------------------------

_Row = tuple[list[float], float, int, int, str, MaskPayload | None]


def _bounding_box(obj: Mapping[str, Any], path: str) -> list[float]:
    b = _required(obj, "bounding-box", path, _object)
    where = _at(path, "bounding-box")
    return box_from_wire({"left": _required(b, "left", where, _number), "top": _required(b, "top", where, _number),
                          "width": _required(b, "width", where, _size), "height": _required(b, "height", where, _size)})


def _vidpipe_detection(d: Mapping[str, Any], path: str, image_hw: tuple[int, int] | None) -> _Row:
    mask: MaskPayload | None = None
    if d.get("rle") is not None:
        mask = _rle(d["rle"], _at(path, "rle"), image_hw)
    elif d.get("bitmask") is not None:
        mask = _bitmask(d["bitmask"], _at(path, "bitmask"), image_hw)
    elif d.get("polygon") is not None:
        mask = _polygon(d["polygon"], _at(path, "polygon"))
    return (_bounding_box(d, path), _required(d, "score", path, _number), _optional(d, "class_id", path, _integer, -1),
            _optional(d, "track_id", path, _integer, -1), _optional(d, "category", path, _string, ""), mask)


def _roboflow_prediction(d: Mapping[str, Any], path: str, image_hw: tuple[int, int] | None) -> _Row:
    x, y = _required(d, "x", path, _number), _required(d, "y", path, _number)
    w, h = _required(d, "width", path, _size), _required(d, "height", path, _size)
    mask: MaskPayload | None = None
    if d.get("rle") is not None:
        mask = _rle(d["rle"], _at(path, "rle"), image_hw)
    elif d.get("points") is not None:
        mask = _points(d["points"], _at(path, "points"))
    return ([x - w / 2, y - h / 2, x + w / 2, y + h / 2], _required(d, "confidence", path, _number),
            _optional(d, "class_id", path, _integer, -1), _optional(d, "tracker_id", path, _integer, -1),
            _optional(d, "class", path, _string, ""), mask)


def _instill_object(d: Mapping[str, Any], path: str, image_hw: tuple[int, int] | None) -> _Row:
    mask = None if d.get("rle") is None else _rle(d["rle"], _at(path, "rle"), image_hw)
    return (_bounding_box(d, path), _required(d, "score", path, _number), -1, -1,
            _optional(d, "category", path, _string, ""), mask)


_DETECTION_PARSERS: dict[str, Callable[[Mapping[str, Any], str, tuple[int, int] | None], _Row]] = {
    "vidpipe": _vidpipe_detection, "roboflow": _roboflow_prediction, "instill": _instill_object,
}


def _detections(obj: Mapping[str, Any], fmt: str, image_hw: tuple[int, int] | None,
                keypoint_names: tuple[str, ...]) -> WireDetections:
    key = DETECTIONS_KEY[fmt]
    if fmt == "roboflow" and ("top" in obj or isinstance(obj.get(key), dict)):
        items: list[Any] = []  # a classification's or a semantic segmentation's predictions: no boxes
    else:
        items = _required(obj, key, "", _list)
    parse = _DETECTION_PARSERS[fmt]
    objects = [_object(d, _at(key, i)) for i, d in enumerate(items)]
    rows = [parse(d, _at(key, i), image_hw) for i, d in enumerate(objects)]
    keypoints = [keypoints_of(d, _at(key, i), fmt) for i, d in enumerate(objects)]
    return WireDetections(
        xyxy=np.array([r[0] for r in rows], np.float64).reshape(-1, 4),
        confidence=np.array([r[1] for r in rows], np.float64),
        class_id=np.array([r[2] for r in rows], np.int64),
        tracker_id=np.array([r[3] for r in rows], np.int64),
        category=tuple(r[4] for r in rows),
        masks=tuple(r[5] for r in rows),
        keypoints=keypoint_array(keypoints, key, keypoint_names),
    )


# -- records -------------------------------------------------------------------------------


def _format(obj: Mapping[str, Any]) -> str:
    fmt = obj.get("format", "vidpipe")
    if fmt not in FORMATS:
        raise _fail("format", f"expected one of {', '.join(FORMATS)}, got {_show(fmt)}")
    return str(fmt)


def _image_hw(obj: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(height, width), each None when left out."""
    return _optional(obj, "height", "", _positive, None), _optional(obj, "width", "", _positive, None)


def parse_record(obj: object) -> ResultRecord:
    """A decoded JSON object as a checked :class:`ResultRecord`; :class:`WireError` names
    the first field that is wrong. Required: ``schema``, ``stream``, ``frame`` and the
    format's detections list (Roboflow's classification and semantic answers put their
    own ``predictions`` there); the rest of the envelope has defaults, and the task
    fields (``keypoint_names``, ``keypoints``, ``classification``, ``semantic``, ...)
    are optional."""
    rec = _object(obj, "record")
    if rec.get("schema") != SCHEMA:
        raise _fail("schema", f"expected {SCHEMA!r}, got {_show(rec.get('schema'))}")
    fmt = _format(rec)
    height, width = _image_hw(rec)
    image_hw = (height, width) if height is not None and width is not None else None
    names: list[Any] = _optional(rec, "keypoint_names", "", _list, [])
    keypoint_names = tuple(_string(v, _at("keypoint_names", i)) for i, v in enumerate(names))
    return ResultRecord(
        stream=_required(rec, "stream", "", _string),
        frame=_required(rec, "frame", "", _integer),
        width=width,
        height=height,
        format=fmt,
        detections=_detections(rec, fmt, image_hw, keypoint_names),
        pts=_nullable(rec, "pts", "", _number),
        captured_at=_optional(rec, "captured_at", "", _number, 0.0),
        model=_optional(rec, "model", "", _string, ""),
        inferred=_optional(rec, "inferred", "", _boolean, True),
        gap=_optional(rec, "gap", "", _boolean, False),
        stream_state=_optional(rec, "stream_state", "", _string, "streaming"),
        timings=_optional(rec, "timings", "", _mapping_of(_number), {}),
        latency_ms=_optional(rec, "latency_ms", "", _number, 0.0),
        drops=_optional(rec, "drops", "", _mapping_of(_integer), {}),
        seq=_nullable(rec, "seq", "", _integer),
        stream_seq=_nullable(rec, "stream_seq", "", _integer),
        publisher=_nullable(rec, "publisher", "", _string),
        source_path=_nullable(rec, "source_path", "", _string),
        keypoint_names=keypoint_names,
        classification=classification_of(rec, fmt),
        semantic=semantic_of(rec, fmt, image_hw),
        raw=rec,
    )


# -- JSON Lines ----------------------------------------------------------------------------


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line: JSON objects of the schema."""
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WireError(f"{path} line {n}: not JSON ({exc.msg})") from None
            except UnicodeDecodeError:
                raise WireError(f"{path} line {n}: not JSON (not UTF-8 text)") from None
            if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
                raise WireError(f"{path} line {n}: not a {SCHEMA} record")
            yield n, obj


def read_records(path: str | Path) -> list[ResultRecord]:
    """The records of a ``vidpipe.result/1`` JSON Lines file (blank lines skipped). A line
    that is not JSON or not of the schema is reported first, then a record's bad field:
    each as ``FILE line N: ...``.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write('{"schema": "vidpipe.result/1", "stream": "s", "frame": 0, "detections": []}\\n')
    >>> [(r.stream, r.frame) for r in read_records(f.name)]
    [('s', 0)]
    >>> Path(f.name).unlink()
    """
    p = Path(path)
    if not p.is_file():
        raise VidpipeError(f"results file not found: {p}")
    out = []
    for n, obj in list(_json_lines(p)):
        try:
            out.append(parse_record(obj))
        except WireError as exc:
            raise WireError(f"{p} line {n}: {exc}", exc.path) from None
    return out
