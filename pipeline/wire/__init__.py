"""The wire layer: ``vidpipe.result/1`` records (and heartbeats) encoded from anything
shaped like a result and decoded into checked, typed records. Depends on
``pipeline.core`` only.

Example:
    >>> from pipeline.wire import SCHEMA, parse_record
    >>> parse_record({"schema": SCHEMA, "stream": "cam0", "frame": 0, "detections": []}).frame
    0
"""

from __future__ import annotations

from pipeline.wire.formats import box_from_wire, decode_bitmask, encode_bitmask, wire_box
from pipeline.wire.parse import (
    DETECTIONS_KEY,
    Bitmask,
    CocoRle,
    MaskPayload,
    Polygon,
    ResultRecord,
    WireDetections,
    WireError,
    parse_record,
    read_records,
)
from pipeline.wire.parse_tasks import WireClassification, WireSegment, WireSemantic
from pipeline.wire.protocols import ClassificationView, DetectionsView, ResultView, SemanticView
from pipeline.wire.records import (
    FORMATS,
    HEARTBEAT_SCHEMA,
    HEARTBEAT_TOPIC,
    MASK_FORMATS,
    SCHEMA,
    MaskFormat,
    OutputFormat,
    heartbeat_record,
    is_heartbeat,
    to_record,
)

__all__ = [
    "DETECTIONS_KEY", "FORMATS", "HEARTBEAT_SCHEMA", "HEARTBEAT_TOPIC", "MASK_FORMATS", "SCHEMA", "Bitmask", "ClassificationView",
    "CocoRle",
    "DetectionsView", "MaskFormat", "MaskPayload", "OutputFormat", "Polygon", "ResultRecord", "ResultView", "SemanticView",
    "WireClassification", "WireDetections", "WireError", "WireSegment", "WireSemantic",
    "box_from_wire", "decode_bitmask", "encode_bitmask", "heartbeat_record",
    "is_heartbeat", "parse_record", "read_records", "to_record", "wire_box",
]
