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
    pipeline.wire.parse.WireError: detections.0.score: expected a number, got 'x'
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, TypeVar

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import VidpipeError
from pipeline.wire.formats import box_from_wire, decode_bitmask
from pipeline.wire.records import FORMATS, SCHEMA

_T = TypeVar("_T")

#: The key of the detections' list in each output format.
DETECTIONS_KEY: dict[str, str] = {"vidpipe": "detections", "roboflow": "predictions", "instill": "objects"}


class WireError(VidpipeError):
    """A JSON object that is not a valid ``vidpipe.result/1`` record; the message (and
    ``path``) name the field, e.g. ``detections.3.score``."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


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


@dataclass(frozen=True, eq=False)
class WireDetections:
    """Detections as sent: ``xyxy`` (N, 4) float64, ``confidence`` (N,), ``class_id`` and
    ``tracker_id`` (N,) int64 (-1: not sent / no track), ``category`` names and ``masks``
    (a payload or None per detection)."""

    xyxy: npt.NDArray[np.float64]
    confidence: npt.NDArray[np.float64]
    class_id: npt.NDArray[np.int64]
    tracker_id: npt.NDArray[np.int64]
    category: tuple[str, ...]
    masks: tuple[MaskPayload | None, ...]

    def __len__(self) -> int:
        return len(self.xyxy)


@dataclass(frozen=True, eq=False)
class ResultRecord:
    """A checked ``vidpipe.result/1`` record. ``width``/``height`` are None when the record
    leaves them out; ``raw`` is the JSON object itself."""

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


# -- values --------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(path: str, problem: str) -> WireError:
    return WireError(f"{path}: {problem}", path)


def _at(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(path, f"expected a number, got {_show(value)}")
    return float(value)


def _size(value: object, path: str) -> float:
    number = _number(value, path)
    if number < 0:
        raise _fail(path, f"expected a non-negative number, got {_show(value)}")
    return number


def _integer(value: object, path: str) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"expected an integer, got {_show(value)}")
    return value


def _positive(value: object, path: str) -> int:
    try:
        number = _integer(value, path)
    except WireError:
        number = 0
    if number <= 0:
        raise _fail(path, f"expected a positive integer, got {_show(value)}")
    return number


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"expected a string, got {_show(value)}")
    return value


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"expected true or false, got {_show(value)}")
    return value


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {_show(value)}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected a list, got {_show(value)}")
    return value


def _required(obj: Mapping[str, Any], key: str, path: str, check: Callable[[object, str], _T]) -> _T:
    where = _at(path, key)
    if key not in obj:
        raise _fail(where, "missing")
    return check(obj[key], where)


def _optional(obj: Mapping[str, Any], key: str, path: str, check: Callable[[object, str], _T], default: _T) -> _T:
    return check(obj[key], _at(path, key)) if key in obj else default


def _nullable(obj: Mapping[str, Any], key: str, path: str, check: Callable[[object, str], _T]) -> _T | None:
    value = obj.get(key)
    return None if value is None else check(value, _at(path, key))


def _mapping_of(check: Callable[[object, str], _T]) -> Callable[[object, str], dict[str, _T]]:
    def parse(value: object, path: str) -> dict[str, _T]:
        return {str(k): check(v, _at(path, k)) for k, v in _object(value, path).items()}

    return parse


# -- masks ---------------------------------------------------------------------------------


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


def _detections(obj: Mapping[str, Any], fmt: str, image_hw: tuple[int, int] | None) -> WireDetections:
    key = DETECTIONS_KEY[fmt]
    items = _required(obj, key, "", _list)
    parse = _DETECTION_PARSERS[fmt]
    rows = [parse(_object(d, _at(key, i)), _at(key, i), image_hw) for i, d in enumerate(items)]
    return WireDetections(
        xyxy=np.array([r[0] for r in rows], np.float64).reshape(-1, 4),
        confidence=np.array([r[1] for r in rows], np.float64),
        class_id=np.array([r[2] for r in rows], np.int64),
        tracker_id=np.array([r[3] for r in rows], np.int64),
        category=tuple(r[4] for r in rows),
        masks=tuple(r[5] for r in rows),
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
    format's detections list; the rest of the envelope has defaults."""
    rec = _object(obj, "record")
    if rec.get("schema") != SCHEMA:
        raise _fail("schema", f"expected {SCHEMA!r}, got {_show(rec.get('schema'))}")
    fmt = _format(rec)
    height, width = _image_hw(rec)
    image_hw = (height, width) if height is not None and width is not None else None
    return ResultRecord(
        stream=_required(rec, "stream", "", _string),
        frame=_required(rec, "frame", "", _integer),
        width=width,
        height=height,
        format=fmt,
        detections=_detections(rec, fmt, image_hw),
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
