"""Pose keypoints, classifications and semantic segments on the wire (issue 15): every
output format carries them, JSON Lines files and a real ZeroMQ socket round-trip them,
older records still parse and bad types are WireErrors (counted malformed)."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest
import zmq

from pipeline.vision.classification import Classification
from pipeline.vision.detections import Detections
from pipeline.vision.result import Result
from pipeline.vision.semantic import SemanticSegments
from pipeline.wire import FORMATS, SCHEMA, WireError, parse_record, read_records, to_record
from sinks.config import JsonlSinkConfig, ZmqSinkConfig
from sinks.jsonl import JsonlSink
from sinks.subscriber import Subscriber, detections_from_record
from sinks.zmq import ZmqSink
from tests.conftest import free_port

H, W = 48, 64
NAMES = ("circle", "rectangle", "triangle")
KP_NAMES = ("tip", "left", "right")


def pose_result() -> Result:
    kp = np.array([[[10, 8, 0.9], [6, 18, 0.8], [14, 18, 0.25]],
                   [[40.5, 20.25, 0.95], [36, 30, 0.0], [44, 30, 0.7]]], np.float32)
    dets = Detections(np.array([[5, 6, 15, 20], [34, 18, 46, 32]], np.float32), np.array([0.9, 0.6], np.float32),
                      np.array([2, 2]), (H, W), tracker_id=np.array([3, -1]), class_names=NAMES, keypoints=kp,
                      keypoint_names=KP_NAMES)
    return Result("cam0", 4, 0.1, 1700000000.0, W, H, "pose", dets)


def classify_result() -> Result:
    dets = Detections.empty((H, W), with_masks=False, class_names=NAMES)
    dets.classification = Classification.from_probabilities(np.array([0.1, 0.7, 0.2], np.float32), top_k=2,
                                                            class_names=NAMES)
    return Result("cam0", 5, 0.2, 1700000000.0, W, H, "cls", dets)


def semantic_result() -> Result:
    class_map = np.zeros((H, W), np.int64)
    class_map[5:20, 10:30] = 2
    class_map[30:, :] = 1
    dets = Detections.empty((H, W), with_masks=False, class_names=NAMES)
    dets.semantic = SemanticSegments(class_map, NAMES)
    return Result("cam0", 6, 0.3, 1700000000.0, W, H, "sem", dets)


def _wire(result: Result, fmt: str) -> dict:
    return json.loads(json.dumps(to_record(result, format=fmt)))


def _check_pose(dets: Detections, fmt: str) -> None:
    sent = pose_result().detections
    assert dets.keypoints is not None and dets.keypoints.shape == (2, 3, 3)
    np.testing.assert_allclose(dets.keypoints, sent.keypoints, atol=0.01)
    assert tuple(dets.keypoint_names) == KP_NAMES
    if fmt != "instill":  # Instill objects carry no class id nor track
        assert dets.category == ["triangle", "triangle"]
        assert dets.tracker_id.tolist() == [3, -1]


def _check_classify(dets: Detections, fmt: str) -> None:
    assert len(dets) == 0 and dets.classification is not None
    got = dets.classification
    if fmt == "instill":  # Instill's classification is the top class alone
        assert got.category == ["rectangle"] and got.confidence.tolist() == pytest.approx([0.7])
        return
    assert got.class_id.tolist() == [1, 2]
    assert got.category == ["rectangle", "triangle"]
    assert got.confidence.tolist() == pytest.approx([0.7, 0.2])


def _check_semantic(dets: Detections, fmt: str) -> None:
    sent = semantic_result().detections.semantic
    got = dets.semantic
    assert len(dets) == 0 and got is not None
    assert got.category == sent.category == ["circle", "rectangle", "triangle"]
    np.testing.assert_allclose(got.share, sent.share, atol=1e-6)
    if fmt == "instill":  # stuffs carry names, not ids: numbered in order
        for i, name in enumerate(got.category):
            assert np.array_equal(got.mask(int(got.class_ids[i])), sent.mask(NAMES.index(name)))
    else:
        assert np.array_equal(got.class_map, sent.class_map)


CASES = {"pose": (pose_result, _check_pose), "classify": (classify_result, _check_classify),
         "semantic": (semantic_result, _check_semantic)}


@pytest.mark.parametrize("task", CASES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_task_round_trips_through_a_jsonl_file_in_each_format(tmp_path, task, fmt):
    make, check = CASES[task]
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(JsonlSinkConfig(path=path, format=fmt))
    sink.open()
    for _ in range(2):
        sink.write(make())
    sink.close()
    records = read_records(path)
    assert len(records) == 2
    check(detections_from_record(records[0]), fmt)


@pytest.mark.parametrize("task", CASES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_task_round_trips_over_a_real_zeromq_socket(task, fmt):
    make, check = CASES[task]
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, mode="push", format=fmt))
    sink.open()
    try:
        with Subscriber(endpoint, mode="pull") as sub:
            sink.write(make())
            msg = sub.receive(timeout_s=20)
            assert msg is not None
            check(msg.detections, fmt)
            result = msg.to_result()
            check(result.detections, fmt)
            assert sub.stats.malformed == 0
    finally:
        sink.close()


def test_vidpipe_format_fields():
    rec = _wire(pose_result(), "vidpipe")
    assert rec["keypoint_names"] == list(KP_NAMES)
    assert rec["detections"][1]["keypoints"] == [[40.5, 20.25, 0.95], [36.0, 30.0, 0.0], [44.0, 30.0, 0.7]]
    cls = _wire(classify_result(), "vidpipe")["classification"]
    assert cls["top"] == "rectangle" and cls["confidence"] == 0.7
    assert cls["predictions"][1] == {"class": "triangle", "class_id": 2, "confidence": 0.2}
    sem = _wire(semantic_result(), "vidpipe")["semantic"]
    assert [(s["class"], s["class_id"]) for s in sem] == [("circle", 0), ("rectangle", 1), ("triangle", 2)]
    assert sum(s["share"] for s in sem) == pytest.approx(1.0)
    assert sem[2]["share"] == pytest.approx(15 * 20 / (H * W), abs=1e-6) and sem[2]["rle"]["size"] == [H, W]
    assert "classification" not in _wire(pose_result(), "vidpipe")  # absent unless the model classifies


def test_roboflow_format_fields_match_roboflow_inference_responses():
    pred = _wire(pose_result(), "roboflow")["predictions"][0]
    assert {"x", "y", "width", "height", "confidence", "class", "class_id", "detection_id", "keypoints"} <= set(pred)
    assert pred["keypoints"][0] == {"x": 10.0, "y": 8.0, "confidence": 0.9, "class_id": 0, "class": "tip"}
    cls = _wire(classify_result(), "roboflow")  # ClassificationInferenceResponse
    assert cls["predictions"] == [{"class": "rectangle", "class_id": 1, "confidence": 0.7},
                                  {"class": "triangle", "class_id": 2, "confidence": 0.2}]
    assert cls["top"] == "rectangle" and cls["confidence"] == 0.7 and cls["image"] == {"width": W, "height": H}
    sem = _wire(semantic_result(), "roboflow")["predictions"]  # SemanticSegmentationPrediction
    assert set(sem) == {"segmentation_mask", "class_map", "confidence_mask"}
    assert sem["class_map"] == {"0": "circle", "1": "rectangle", "2": "triangle"}
    png = cv2.imdecode(np.frombuffer(base64.b64decode(sem["segmentation_mask"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and np.array_equal(png, semantic_result().detections.semantic.class_map)
    conf = cv2.imdecode(np.frombuffer(base64.b64decode(sem["confidence_mask"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert (conf == 255).all()  # no per-pixel confidence from the model: every reported pixel at full confidence


def test_instill_format_fields_match_the_task_outputs():
    obj = _wire(pose_result(), "instill")["objects"][0]  # TASK_KEYPOINT object
    assert obj["keypoints"][1] == {"x": 6.0, "y": 18.0, "v": 0.8} and "rle" not in obj
    assert obj["score"] == 0.9 and set(obj["bounding-box"]) == {"left", "top", "width", "height"}
    cls = _wire(classify_result(), "instill")  # TASK_CLASSIFICATION
    assert (cls["category"], cls["score"]) == ("rectangle", 0.7)
    stuffs = _wire(semantic_result(), "instill")["stuffs"]  # TASK_SEMANTIC_SEGMENTATION
    assert [s["category"] for s in stuffs] == ["circle", "rectangle", "triangle"]
    assert all(isinstance(s["rle"], str) for s in stuffs)


def test_records_without_the_task_fields_still_parse():
    rec = parse_record({"schema": SCHEMA, "stream": "c", "frame": 0, "width": W, "height": H, "detections": [
        {"bounding-box": {"left": 1, "top": 2, "width": 3, "height": 4}, "score": 0.5}]})
    assert rec.detections.keypoints is None and rec.classification is None and rec.semantic is None
    dets = detections_from_record(rec)
    assert dets.keypoints is None and dets.classification is None and dets.semantic is None


def test_roboflow_keypoints_below_a_threshold_may_be_left_out():
    rec = _wire(pose_result(), "roboflow")
    rec["predictions"][0]["keypoints"] = [k for k in rec["predictions"][0]["keypoints"] if k["confidence"] >= 0.5]
    dets = detections_from_record(rec)
    assert dets.keypoints[0, 2].tolist() == [0.0, 0.0, 0.0]
    assert dets.keypoints[0, 1].tolist() == pytest.approx([6.0, 18.0, 0.8])


@pytest.mark.parametrize(("make", "fmt", "change", "field"), [
    (pose_result, "vidpipe", lambda r: r["detections"][0].update(keypoints=[[1, 2]]), "detections.0.keypoints.0"),
    (pose_result, "vidpipe", lambda r: r["detections"][0].update(keypoints=[[1, "x", 0.5]]), "detections.0.keypoints.0.1"),
    (pose_result, "vidpipe", lambda r: r.update(keypoint_names="tip"), "keypoint_names"),
    (pose_result, "vidpipe", lambda r: r["detections"][0].update(keypoints=[[0, 0, 0]] * 4), "detections.0.keypoints"),
    (pose_result, "roboflow", lambda r: r["predictions"][0]["keypoints"][0].update(class_id=10**9),
     "predictions.0.keypoints.0.class_id"),
    (pose_result, "instill", lambda r: r["objects"][0]["keypoints"][0].pop("v"), "objects.0.keypoints.0.v"),
    (classify_result, "vidpipe", lambda r: r.update(classification=[1]), "classification"),
    (classify_result, "vidpipe", lambda r: r["classification"]["predictions"][0].update(confidence="high"),
     "classification.predictions.0.confidence"),
    (classify_result, "vidpipe", lambda r: r["classification"]["predictions"][0].update(class_id=2**70),
     "classification.predictions.0.class_id"),
    (classify_result, "roboflow", lambda r: r.update(top=3), "top"),
    (classify_result, "instill", lambda r: r.update(score=None), "score"),
    (semantic_result, "vidpipe", lambda r: r["semantic"][0].update(share=2), "semantic.0.share"),
    (semantic_result, "vidpipe", lambda r: r["semantic"][0]["rle"].update(size=[1, 1]), "semantic.0.rle.size"),
    (semantic_result, "roboflow", lambda r: r["predictions"].update(segmentation_mask="not png"),
     "predictions.segmentation_mask"),
    (semantic_result, "roboflow", lambda r: r["predictions"]["class_map"].update({"x": "road"}), "predictions.class_map.x"),
    (semantic_result, "instill", lambda r: r["stuffs"][0].update(category=1), "stuffs.0.category"),
])
def test_bad_task_fields_are_wire_errors_naming_the_field(make, fmt, change, field):
    rec = _wire(make(), fmt)
    change(rec)
    with pytest.raises(WireError) as err:
        detections_from_record(rec)
    assert err.value.path == field, str(err.value)


def test_a_bad_task_field_is_counted_malformed_by_the_subscriber():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind(endpoint)
    try:
        with Subscriber(endpoint, mode="pull") as sub:
            bad = _wire(semantic_result(), "vidpipe")
            bad["semantic"][0]["rle"]["counts"] = "!!!!"
            good = _wire(classify_result(), "vidpipe")
            push.send_multipart([b"cam0", json.dumps(bad).encode()])
            push.send_multipart([b"cam0", json.dumps(good).encode()])
            msg = sub.receive(timeout_s=20)
            assert msg is not None and msg.frame == 5
            assert sub.stats.malformed == 1
    finally:
        push.close(0)
        ctx.term()


def test_supervision_conversions():
    import supervision as sv

    dets = pose_result().detections
    kp = dets.to_supervision_keypoints(min_confidence=0.5)
    assert isinstance(kp, sv.KeyPoints) and kp.xy.shape == (2, 3, 2)
    assert kp.keypoint_confidence.tolist()[0] == pytest.approx([0.9, 0.8, 0.25])
    assert kp.class_id.tolist() == [2, 2] and kp.visible.tolist() == [[True, True, False], [True, False, True]]
    sv_dets = dets.to_supervision()
    assert sv_dets.data["class_name"].tolist() == ["triangle", "triangle"] and sv_dets.data["keypoints"].shape == (2, 3, 3)
    assert sv_dets[1:].data["keypoints"].shape == (1, 3, 3)  # a subset keeps its keypoints
    cls = classify_result().detections.to_supervision_classifications()
    assert isinstance(cls, sv.Classifications) and cls.class_id.tolist() == [1, 2]
    assert Detections.empty((H, W)).to_supervision_classifications() is None


def test_vidpipe_subscribe_prints_the_top_class_and_the_class_shares():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "subscribe", f"tcp://127.0.0.1:{port}", "--pull", "--bind",
                             "--count", "2", "--timeout", "30"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(f"tcp://127.0.0.1:{port}")  # queued until the CLI has bound
    try:
        for result in (classify_result(), semantic_result()):
            push.send_multipart([b"cam0", json.dumps(to_record(result)).encode()])
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        push.close()
        ctx.term()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert "top rectangle 0.70" in lines[0]
    assert "circle=53% rectangle=38% triangle=10%" in lines[1]
