"""Pose keypoints travel with tracks (issue 15): ByteTrack's output keeps each detection's
keypoints, frames without inference (``infer_interval``) move them with the predicted box,
frame-level answers pass the tracker stage untouched, and a classification or semantic
model given a tracker is one clear config error."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import Pipeline
from pipeline.core.errors import ConfigError
from pipeline.core.items import EndOfStream, StreamInfo
from pipeline.core.ring import RingBuffer
from pipeline.core.stage import Bus
from pipeline.core.stats import StreamStats
from pipeline.track.bytetrack import ByteTrack
from pipeline.track.config import TrackerConfig
from pipeline.track.factory import check_task_trackable
from pipeline.track.stage import TrackerStage
from pipeline.vision.classification import Classification
from pipeline.vision.detections import Detections
from pipeline.vision.result import Result
from sources.config import SyntheticSourceConfig
from sources.synthetic import SyntheticSource

HW = (240, 320)
KP_NAMES = ("top_left", "centre", "bottom_right")


def _pose(x: float, w: float = 40.0, h: float = 60.0) -> Detections:
    """One object at ``x`` with keypoints at its top-left corner, centre and bottom-right corner."""
    box = np.array([[x, 50, x + w, 50 + h]], np.float32)
    kp = np.array([[[x, 50, 0.9], [x + w / 2, 50 + h / 2, 0.8], [x + w, 50 + h, 0.7]]], np.float32)
    return Detections(box, [0.9], [0], HW, keypoints=kp, keypoint_names=KP_NAMES)


def test_update_returns_each_detection_with_its_own_keypoints():
    tracker = ByteTrack(TrackerConfig(minimum_consecutive_frames=1))
    two = Detections(np.array([[10, 10, 50, 50], [200, 100, 240, 160]], np.float32), [0.9, 0.8], [0, 0], HW,
                     keypoints=np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3))
    for _ in range(3):
        tracker.update(two)
    out = tracker.update(two[np.array([1, 0])])  # the order changes: keypoints stay with their box
    assert out.tracker_id.tolist() == [2, 1]
    assert np.array_equal(out.keypoints, two.keypoints[[1, 0]])


def test_predicted_frames_move_keypoints_with_their_box():
    tracker = ByteTrack(TrackerConfig(minimum_consecutive_frames=1))
    for i in range(8):
        tracker.update(_pose(20.0 + 6 * i))  # 6 px a frame to the right
    carried = tracker.predict(HW)
    assert carried.tracker_id.tolist() == [1]
    assert tuple(carried.keypoint_names) == KP_NAMES
    kp, (x0, y0, x1, y1) = carried.keypoints[0], carried.xyxy[0]
    assert x0 > 20.0 + 6 * 7  # the box moved on ...
    np.testing.assert_allclose(kp[0, :2], [x0, y0], atol=0.05)  # ... and the keypoints with it
    np.testing.assert_allclose(kp[1, :2], [(x0 + x1) / 2, (y0 + y1) / 2], atol=0.05)
    np.testing.assert_allclose(kp[2, :2], [x1, y1], atol=0.05)
    assert kp[:, 2].tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_keypoints_scale_with_a_growing_box():
    tracker = ByteTrack(TrackerConfig(minimum_consecutive_frames=1))
    for i in range(8):
        tracker.update(_pose(100.0, w=40.0 + 4 * i, h=60.0 + 6 * i))
    carried = tracker.predict(HW)
    (x0, y0, x1, y1), kp = carried.xyxy[0], carried.keypoints[0]
    assert x1 - x0 > 40.0 + 4 * 7
    np.testing.assert_allclose(kp[2, :2], [x1, y1], atol=0.05)
    np.testing.assert_allclose(kp[1, :2], [(x0 + x1) / 2, (y0 + y1) / 2], atol=0.05)


def _run_stage(items: list[object], config: TrackerConfig | None) -> list[Result]:
    """The tracker stage run over ``items`` (then end of stream) as the pipeline runs it."""
    inp: RingBuffer = RingBuffer(len(items) + 2, name="results")
    out: RingBuffer = RingBuffer(len(items) + 2, name="sink")
    for item in [StreamInfo("cam", None, HW[1], HW[0], fps=30.0), *items, EndOfStream("cam")]:
        inp.put(item)
    stage = TrackerStage(Bus(), inp, [out], {"cam": StreamStats("cam")}, config)
    stage.run()
    results = []
    while len(out):
        item = out.get(timeout=0)
        if isinstance(item, Result):
            results.append(item)
    return results


def _result(i: int, dets: Detections, inferred: bool = True) -> Result:
    return Result("cam", i, i / 30, 0.0, HW[1], HW[0], "m", dets, inferred=inferred)


def test_tracker_stage_fills_carried_frames_with_moved_keypoints():
    """``infer_interval: 3``: inferred, carried, carried, inferred, ..."""
    items = []
    for i in range(9):
        inferred = i % 3 == 0
        items.append(_result(i, _pose(20.0 + 5 * i) if inferred else Detections.empty(HW, with_masks=False), inferred))
    results = _run_stage(items, TrackerConfig(minimum_consecutive_frames=1))
    assert [r.inferred for r in results] == [i % 3 == 0 for i in range(9)]
    for r in results:
        assert r.detections.tracker_id.tolist() == [1]
        assert r.detections.keypoints is not None and tuple(r.detections.keypoint_names) == KP_NAMES
        (x0, y0, x1, y1), kp = r.detections.xyxy[0], r.detections.keypoints[0]
        np.testing.assert_allclose(kp[0, :2], [x0, y0], atol=0.05)
        np.testing.assert_allclose(kp[2, :2], [x1, y1], atol=0.05)
    assert results[5].detections.keypoints[0, 0, 0] > results[3].detections.keypoints[0, 0, 0]  # moving on


@pytest.mark.parametrize("config", [None, TrackerConfig(type="none")])
def test_frame_level_answers_pass_the_tracker_stage_untouched(config):
    dets = Detections.empty(HW, with_masks=False)
    dets.classification = Classification([2, 0], [0.8, 0.1], ("a", "b", "c"))
    results = _run_stage([_result(0, dets)], config)
    assert results[0].detections is dets and results[0].detections.classification.category == ["c", "a"]


@pytest.mark.parametrize(("task", "what"), [("classify", "classification"), ("semantic", "semantic segmentation"),
                                            ("semantic-segmentation", "semantic segmentation")])
def test_a_frame_level_model_given_a_tracker_is_one_config_error(task, what):
    with pytest.raises(ConfigError) as err:
        check_task_trackable(task, TrackerConfig(), "cls-model")
    assert str(err.value).startswith(f"tracker: model cls-model is a {what} model")
    assert "\n" not in str(err.value)
    check_task_trackable(task, None, "m")  # no tracker: fine
    check_task_trackable(task, TrackerConfig(type="none"), "m")
    check_task_trackable("pose", TrackerConfig(), "m")


def test_pipeline_refuses_a_tracker_for_a_classification_model(model, monkeypatch):
    monkeypatch.setattr(type(model), "task", property(lambda self: "classify"), raising=False)
    source = SyntheticSource("s", SyntheticSourceConfig(frames=2, width=64, height=48))
    with pytest.raises(ConfigError, match="^tracker: model .* is a classification model"):
        Pipeline([source], model, [], tracker=TrackerConfig())
