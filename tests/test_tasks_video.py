"""The annotated video draws every task (issue 15): a pose model's skeleton (COCO-17 edges
for 17 keypoints, points otherwise), a classification model's top class and a semantic
segmentation model's class overlay. Each mp4 is decoded with PyAV and its pixels checked
where the drawing is, and where it is not."""

from __future__ import annotations

import av
import numpy as np

from pipeline.core.items import EndOfStream
from pipeline.vision.classification import Classification
from pipeline.vision.detections import Detections
from pipeline.vision.result import Result
from pipeline.vision.semantic import SemanticSegments
from sinks.config import VideoSinkConfig
from sinks.draw import COCO17_SKELETON
from sinks.video import AnnotatedVideoSink

H, W = 240, 320
GREY = 128
FRAMES = 3


def _write(tmp_path, dets: Detections, **options) -> np.ndarray:
    """``dets`` drawn on FRAMES grey frames into an mp4; its last frame decoded (BGR)."""
    sink = AnnotatedVideoSink(VideoSinkConfig(path=str(tmp_path / "{stream}.mp4"), boxes=False, traces=False, **options))
    sink.bind_streams(["cam"])
    sink.open()
    for i in range(FRAMES):
        image = np.full((H, W, 3), GREY, np.uint8)
        sink.write(Result("cam", i, i / 30, 0.0, W, H, "m", dets, image=image))
    sink.end_stream(EndOfStream("cam"))
    sink.close()
    with av.open(str(tmp_path / "cam.mp4")) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) == FRAMES
    return frames[-1].astype(np.int16)


def _changed(frame: np.ndarray, x: float, y: float, r: int = 1) -> bool:
    patch = frame[int(y) - r:int(y) + r + 1, int(x) - r:int(x) + r + 1]
    return bool(np.abs(patch - GREY).max() > 40)


def _person() -> Detections:
    """17 COCO keypoints of a standing figure; keypoint 16 (right ankle) below the threshold."""
    kp = np.array([[160, 40], [155, 35], [165, 35], [148, 38], [172, 38], [140, 70], [180, 70], [130, 105], [190, 105],
                   [125, 140], [195, 140], [148, 140], [172, 140], [145, 180], [175, 180], [143, 220], [177, 220]],
                  np.float32)
    conf = np.full((17, 1), 0.9, np.float32)
    conf[16] = 0.1
    return Detections(np.array([[120, 30, 200, 225]], np.float32), [0.9], [0], (H, W),
                      keypoints=np.concatenate([kp, conf], 1)[None], class_names=("person",))


def test_coco17_keypoints_are_drawn_as_a_skeleton(tmp_path):
    dets = _person()
    frame = _write(tmp_path, dets, labels=False)
    kp = dets.keypoints[0]
    for a, b in COCO17_SKELETON:
        mid = (kp[a, :2] + kp[b, :2]) / 2
        drawn = _changed(frame, *mid)
        assert drawn == (16 not in (a, b)), f"edge {a}-{b}"  # an edge to an unconfident keypoint is left out
    assert all(_changed(frame, *kp[i, :2]) for i in range(16))
    assert not _changed(frame, 60, 200, r=3) and not _changed(frame, 260, 60, r=3)  # the background stays


def test_other_keypoint_layouts_are_drawn_as_points_only(tmp_path):
    kp = np.array([[[100, 100, 0.9], [220, 100, 0.9], [160, 200, 0.9]]], np.float32)
    dets = Detections(np.array([[90, 90, 230, 210]], np.float32), [0.9], [0], (H, W), keypoints=kp)
    frame = _write(tmp_path, dets, labels=False)
    assert all(_changed(frame, x, y) for x, y, _ in kp[0])
    assert not _changed(frame, 160, 100, r=2)  # no edge between points 0 and 1


def test_keypoints_switch_off(tmp_path):
    frame = _write(tmp_path, _person(), labels=False, keypoints=False)
    assert not _changed(frame, 160, 40, r=2)


def test_classification_label_is_drawn_top_left(tmp_path):
    dets = Detections.empty((H, W), with_masks=False)
    dets.classification = Classification([1, 0], [0.87, 0.1], ("cat", "dog"))
    frame = _write(tmp_path, dets)
    band = frame[2:18, 2:60]
    assert (np.abs(band - GREY) > 40).mean() > 0.5  # the dark band with white text
    assert np.abs(frame[120:, :] - GREY).max() < 30  # nothing else drawn
    (tmp_path / "off").mkdir()
    assert np.abs(_write(tmp_path / "off", dets, labels=False) - GREY).max() < 30


def test_semantic_overlay_blends_each_class_in_its_colour(tmp_path):
    class_map = np.zeros((H, W), np.int64)
    class_map[:, 160:] = 1
    class_map[60:180, 40:120] = 2
    class_map[200:, :40] = -1  # no class: not drawn
    dets = Detections.empty((H, W), with_masks=False)
    dets.semantic = SemanticSegments(class_map, ("road", "car", "sky"), ignore_index=-1)
    frame = _write(tmp_path, dets)
    means = {c: frame[class_map == c].reshape(-1, 3).mean(0) for c in (0, 1, 2)}
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert np.abs(means[a] - means[b]).max() > 20, f"classes {a} and {b} look alike"
    assert all(np.abs(m - GREY).max() > 20 for m in means.values())  # every class tinted
    assert np.abs(frame[205:235, 5:35] - GREY).max() < 30  # the unclassified corner is left as it was
