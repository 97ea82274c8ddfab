"""A result's JSON record in the ``vidpipe.result/1`` schema (DESIGN.md), and the
publisher's heartbeat (``vidpipe.heartbeat/1``).

:func:`to_record` encodes anything shaped like a result (:class:`ResultView`); the
decoding side is :mod:`pipeline.wire.parse`. The schema grows only by optional fields, so
every reader of ``vidpipe.result/1`` reads every record: besides the envelope and the
detections (:mod:`pipeline.wire.formats`), a pose model's records carry ``keypoints`` per
detection (and ``keypoint_names`` once), a classification model's a ``classification``, a
semantic segmentation model's ``semantic`` segments (per format: :mod:`pipeline.wire.tasks`).

Example:
    >>> from pipeline.vision.detections import Detections
    >>> from pipeline.vision.result import Result
    >>> r = Result("cam0", 3, 0.1, 1700000000.0, 48, 64, "m", Detections.empty((48, 64)))
    >>> rec = to_record(r)
    >>> rec["schema"], rec["stream"], rec["frame"], rec["detections"]
    ('vidpipe.result/1', 'cam0', 3, [])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from pipeline.wire.formats import (
    box_from_wire,
    decode_bitmask,
    encode_bitmask,
    instill_objects,
    roboflow_predictions,
    vidpipe_detections,
    wire_box,
)
from pipeline.wire.protocols import ResultView
from pipeline.wire.tasks import task_fields

__all__ = [
    "FORMATS", "HEARTBEAT_SCHEMA", "HEARTBEAT_TOPIC", "MASK_FORMATS", "SCHEMA", "MaskFormat", "OutputFormat",
    "box_from_wire", "decode_bitmask", "encode_bitmask", "heartbeat_record", "is_heartbeat", "to_record", "wire_box",
]

SCHEMA = "vidpipe.result/1"
OutputFormat = Literal["vidpipe", "roboflow", "instill"]
MaskFormat = Literal["rle", "polygon", "bitmask", "none"]
FORMATS: tuple[str, ...] = get_args(OutputFormat)
MASK_FORMATS: tuple[str, ...] = get_args(MaskFormat)

HEARTBEAT_TOPIC = b"vidpipe.heartbeat"
HEARTBEAT_SCHEMA = "vidpipe.heartbeat/1"


def _envelope(result: ResultView) -> dict[str, Any]:
    return {
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


def to_record(result: ResultView, mask_format: str = "rle", polygon_precision: float = 1.0, seq: int | None = None,
              format: str = "vidpipe") -> dict[str, Any]:
    """The JSON object of a result. Every format keeps the ``vidpipe.result/1`` envelope
    (stream, frame, timings, ..., ``source_path`` for images); ``format`` picks the detections' layout: ``vidpipe``
    (``detections``), ``roboflow`` (``image`` + ``predictions``) or ``instill``
    (``objects``); a pose model's keypoints, a classification or semantic segments are
    written as :mod:`pipeline.wire.tasks` describes. ``seq`` is added on the wire."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if mask_format not in MASK_FORMATS:
        raise ValueError(f"mask_format must be one of {MASK_FORMATS}, got {mask_format!r}")
    rec = _envelope(result)
    if format == "vidpipe":
        rec["detections"] = vidpipe_detections(result.detections, mask_format, polygon_precision)
    elif format == "roboflow":
        rec["format"] = "roboflow"
        rec["image"] = {"width": result.width, "height": result.height}
        rec["predictions"] = roboflow_predictions(result.detections, mask_format, polygon_precision)
    else:
        rec["format"] = "instill"
        rec["objects"] = instill_objects(result.detections)
    rec.update(task_fields(result.detections, format))  # keypoint names, a classification, semantic segments
    rec["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
    rec["latency_ms"] = round(result.latency_ms, 3)
    rec["drops"] = dict(result.drops)
    rec["stream_state"] = result.stream_state
    if result.gap:
        rec["gap"] = True
    if result.source_path is not None:  # optional: older readers ignore it
        rec["source_path"] = result.source_path
    if seq is not None:
        rec["seq"] = seq
    return rec


def heartbeat_record(seq: int, publisher: str, time: float, stream_seq: Mapping[str, int]) -> dict[str, Any]:
    """The JSON body of a heartbeat, sent as ``[HEARTBEAT_TOPIC, body]`` when idle.

    >>> heartbeat_record(7, "host:1:ab12cd", 1700000000.0, {"cam0": 6})["schema"]
    'vidpipe.heartbeat/1'
    """
    return {"schema": HEARTBEAT_SCHEMA, "seq": seq, "publisher": publisher, "time": time, "stream_seq": dict(stream_seq)}


def is_heartbeat(topic: bytes, obj: Mapping[str, Any]) -> bool:
    """Whether a decoded message (topic, JSON object) is a heartbeat.

    >>> is_heartbeat(HEARTBEAT_TOPIC, {"schema": HEARTBEAT_SCHEMA}), is_heartbeat(b"cam0", {"schema": SCHEMA})
    (True, False)
    """
    return topic == HEARTBEAT_TOPIC and obj.get("schema") == HEARTBEAT_SCHEMA
