"""The wire layer: records encoded and decoded back, and every bad field named."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline.core.errors import VidpipeError
from pipeline.vision.detections import Detections
from pipeline.vision.result import Result
from pipeline.wire import (
    HEARTBEAT_TOPIC,
    SCHEMA,
    Bitmask,
    DetectionsView,
    ResultView,
    WireError,
    heartbeat_record,
    is_heartbeat,
    parse_record,
    read_records,
    to_record,
)
from sinks.subscriber import MessageError, Subscriber, detections_from_record

H, W = 48, 64
NAMES = ("circle", "rectangle", "triangle")


def _result() -> Result:
    """Two masked detections with integer boxes (exact on the wire), one tracked."""
    square = np.zeros((10, 10), bool)
    square[2:8, 3:9] = True
    ring = np.ones((12, 8), bool)
    ring[4:8, 2:6] = False
    dets = Detections(
        xyxy=np.array([[5, 6, 15, 16], [40, 20, 48, 32]], np.float32),
        confidence=np.array([0.91, 0.5], np.float32),
        class_id=np.array([2, 0]),
        image_hw=(H, W),
        masks=[square, ring],
        tracker_id=np.array([7, -1]),
        class_names=NAMES,
    )
    return Result("cam0", 12, 0.4, 1700000000.0, W, H, "m", dets, timings={"inference": 3.2}, latency_ms=9.5)


def _wire(result: Result, **kw) -> dict:
    return json.loads(json.dumps(to_record(result, **kw)))


@pytest.mark.parametrize(("fmt", "mask_format"), [("vidpipe", "rle"), ("vidpipe", "bitmask"), ("roboflow", "rle"),
                                                   ("instill", "rle")])
def test_round_trip_keeps_boxes_classes_and_masks(fmt, mask_format):
    sent = _result()
    record = parse_record(_wire(sent, mask_format=mask_format, format=fmt, seq=3))
    assert (record.stream, record.frame, record.width, record.height, record.format) == ("cam0", 12, W, H, fmt)
    assert record.timings == {"inference": 3.2} and record.latency_ms == 9.5 and record.seq == 3
    got = detections_from_record(record)
    np.testing.assert_array_equal(got.xyxy, sent.detections.xyxy)
    np.testing.assert_allclose(got.confidence, sent.detections.confidence, atol=1e-4)
    for a, b in zip(got.masks, sent.detections.masks):
        assert np.array_equal(a, b)
    if fmt != "instill":  # instill objects carry no class ids or track ids
        assert got.class_id.tolist() == [2, 0] and got.category == ["triangle", "circle"]
        assert got.tracker_id.tolist() == [7, -1]


def test_bitmask_and_polygon_payloads_stay_data():
    record = parse_record(_wire(_result(), mask_format="bitmask"))
    assert isinstance(record.detections.masks[0], Bitmask) and record.detections.masks[0].box == (5, 6, 15, 16)
    record = parse_record(_wire(_result(), mask_format="polygon"))
    assert all(len(p.rings) >= 1 for p in record.detections.masks)
    assert detections_from_record(record).masks is None  # polygons are not decoded into masks


def _valid() -> dict:
    return _wire(_result())


def _set(path: str, value):
    def change(rec: dict) -> None:
        *keys, last = path.split(".")
        target = rec
        for k in keys:
            target = target[int(k)] if isinstance(target, list) else target[k]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if isinstance(target, list) else last] = value
    return change


_DELETE = object()

BAD = [
    (_set("detections", {}), "detections: expected a list, got {}"),
    (_set("detections.1", 3), "detections.1: expected an object, got 3"),
    (_set("detections.0.bounding-box", _DELETE), "detections.0.bounding-box: missing"),
    (_set("detections.1.score", "x"), "detections.1.score: expected a number, got 'x'"),
    (_set("detections.0.bounding-box.width", -1), "detections.0.bounding-box.width: expected a non-negative number, got -1"),
    (_set("detections.0.class_id", 1.5), "detections.0.class_id: expected an integer, got 1.5"),
    (_set("detections.0.category", None), "detections.0.category: expected a string, got None"),
    (_set("frame", "3"), "frame: expected an integer, got '3'"),
    (_set("frame", float("nan")), "frame: expected an integer, got nan"),
    (_set("frame", _DELETE), "frame: missing"),
    (_set("width", 0), "width: expected a positive integer, got 0"),
    (_set("height", "48"), "height: expected a positive integer, got '48'"),
    (_set("detections.0.rle.size", [1, 2]), "detections.0.rle.size: expected [48, 64] (the record's height and width), got [1, 2]"),
    (_set("detections.0.rle.size", [48]), "detections.0.rle.size: expected [height, width], got [48]"),
    (_set("detections.0.rle.counts", 5), "detections.0.rle.counts: expected an ASCII string or a list of run lengths, got 5"),
    (_set("timings.inference", "fast"), "timings.inference: expected a number, got 'fast'"),
    (_set("schema", "vidpipe.result/2"), "schema: expected 'vidpipe.result/1', got 'vidpipe.result/2'"),
    (_set("format", "coco"), "format: expected one of vidpipe, roboflow, instill, got 'coco'"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_fields_raise_wire_error_naming_the_path(change, message):
    rec = copy.deepcopy(_valid())
    change(rec)
    with pytest.raises(WireError) as info:
        parse_record(rec)
    assert str(info.value) == message
    assert isinstance(info.value, VidpipeError) and info.value.path == message.split(":")[0]


def test_bad_bitmask_and_roboflow_fields():
    rec = _wire(_result(), mask_format="bitmask")
    rec["detections"][0]["bitmask"]["bits"] = "AA=="  # one byte for a 10x10 box
    with pytest.raises(WireError, match=r"^detections\.0\.bitmask\.bits: not base64 of the box's bits"):
        parse_record(rec)
    rec = _wire(_result(), format="roboflow")
    del rec["predictions"][1]["confidence"]
    with pytest.raises(WireError, match=r"^predictions\.1\.confidence: missing$"):
        parse_record(rec)
    with pytest.raises(WireError, match=r"^record: expected an object, got \[1, 2\]$"):
        parse_record([1, 2])


def test_read_records_names_file_and_line(tmp_path):
    good = json.dumps(_valid())
    path = tmp_path / "r.jsonl"
    path.write_text(good + "\n\n" + good + "\n")
    assert [r.frame for r in read_records(path)] == [12, 12]
    bad = copy.deepcopy(_valid())
    bad["detections"][0]["score"] = "x"
    path.write_text(good + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(WireError, match=r"r\.jsonl line 2: detections\.0\.score: expected a number, got 'x'$"):
        read_records(path)
    path.write_text(good + "\n[1]\n")
    with pytest.raises(WireError, match=r"r\.jsonl line 2: not a vidpipe\.result/1 record$"):
        read_records(path)
    path.write_bytes(good.encode() + b"\n\xff\xfe\n")
    with pytest.raises(WireError, match=r"r\.jsonl line 2: not JSON"):
        read_records(path)
    with pytest.raises(VidpipeError, match="results file not found"):
        read_records(tmp_path / "missing.jsonl")


def test_vision_types_are_wire_views_and_wire_imports_no_vision():
    result = _result()
    assert isinstance(result, ResultView) and isinstance(result.detections, DetectionsView)
    code = "import sys, pipeline.wire; sys.exit(any(m.startswith('pipeline.vision') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_heartbeat_and_unparsable_messages_at_the_subscriber():
    assert is_heartbeat(HEARTBEAT_TOPIC, heartbeat_record(1, "p", 0.0, {"cam0": 3}))
    bad = _valid()
    bad["detections"][1]["score"] = "x"
    with Subscriber("inproc://wire-test", mode="pull", bind=True) as sub:
        assert sub._parse([b"cam0", json.dumps(bad).encode()]) is None
        assert sub._parse([HEARTBEAT_TOPIC, json.dumps(heartbeat_record(1, "p", 0.0, {})).encode()]) is None
        msg = sub._parse([b"cam0", json.dumps(_valid()).encode()])
        assert (sub.stats.malformed, sub.stats.heartbeats, sub.stats.received) == (1, 1, 1)
        assert msg is not None and msg.frame == 12 and len(msg.detections) == 2 and msg.to_result().latency_ms == 9.5
    with Subscriber("inproc://wire-test-strict", mode="pull", bind=True, strict=True) as sub:
        with pytest.raises(MessageError, match=r"malformed message: detections\.1\.score: expected a number"):
            sub._parse([b"cam0", json.dumps(bad).encode()])
        no_size = {k: v for k, v in _valid().items() if k != "width"}
        with pytest.raises(MessageError, match="width"):
            sub._parse([b"cam0", json.dumps(no_size).encode()])
    assert SCHEMA == "vidpipe.result/1"
