"""The bundled pose model: recognised as YOLOv8-pose with 5 named keypoints, and its
keypoints land on the synthetic world's exact ones."""

from __future__ import annotations

import json

import av
import numpy as np
import onnx
import pytest

from pipeline import Pipeline
from pipeline.app.cli import main as cli_main
from pipeline.infer.model import Model
from pipeline.vision.geometry import box_iou
from pipeline.zoo import BUNDLED
from sources.keypoints import KEYPOINT_NAMES

NAME = "shapes-yolov8pose"
# Measured on the first 8 frames of the small clip (seed 11, 640x360): 83 of 93 objects
# matched (box IoU >= 0.5, score >= 0.4), median error of their visible keypoints 0.62 px;
# asserted with margin.
MAX_MEDIAN_ERROR_PX = 2.0
MIN_MATCHED = 0.75


@pytest.fixture(scope="module")
def pose_model():
    return Model.load(BUNDLED[NAME], intra_op_threads=2)


def test_bundled_pose_file_layout_and_metadata(pose_model):
    path = BUNDLED[NAME]
    assert path.stat().st_size <= 5 * 1024 * 1024
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["task"] == "pose" and meta["kpt_shape"] == "[5, 3]" and meta["end2end"] == "False"
    assert pose_model.layout.name == "yolov8-pose" and pose_model.layout.task == "pose"
    assert (pose_model.layout.num_keypoints, pose_model.layout.keypoint_dims, pose_model.layout.num_classes) == (5, 3, 3)
    assert pose_model.keypoint_names == KEYPOINT_NAMES


def test_info_names_task_pose(capsys):
    assert cli_main(["info", NAME]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "yolov8-pose" and info["task"] == "pose"
    assert info["kpt_shape"] == [5, 3] and info["keypoint_names"] == list(KEYPOINT_NAMES)


def test_keypoints_close_to_ground_truth(pose_model, small_clip, gt_small):
    with av.open(str(small_clip)) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(8), c.decode(video=0))]
    errors, matched = [], 0
    for index, dets in enumerate(pose_model.infer(frames)):
        anns = [a for a in gt_small["annotations"] if a["image_id"] == index + 1]
        keep = dets.confidence >= 0.4
        assert dets.keypoints is not None and dets.keypoints.shape == (len(dets), 5, 3)
        gt_boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], float).reshape(-1, 4)
        iou = box_iou(gt_boxes, dets.xyxy[keep].astype(float))
        for g, a in enumerate(anns):
            if not iou.shape[1] or iou[g].max() < 0.5:
                continue
            matched += 1
            pred = dets.keypoints[keep][int(iou[g].argmax())]
            want = np.array(a["keypoints"], float).reshape(5, 3)
            shown = want[:, 2] == 2
            errors.extend(np.hypot(*(pred[shown, :2] - want[shown, :2]).T).tolist())
    assert matched >= MIN_MATCHED * sum(1 for a in gt_small["annotations"] if a["image_id"] <= 8)
    assert np.median(errors) < MAX_MEDIAN_ERROR_PX, f"median keypoint error {np.median(errors):.2f} px"


def test_run_writes_keypoints_in_jsonl(tmp_path, small_clip):
    out = tmp_path / "pose.jsonl"
    cfg = {"streams": [{"id": "s", "source": {"type": "file", "path": str(small_clip)}}],
           "model": {"path": NAME, "intra_op_threads": 2, "postprocess": {"confidence": 0.4}},
           "tracker": {"type": "bytetrack"}, "sinks": [{"type": "jsonl", "path": str(out)}]}
    with Pipeline.from_config(cfg) as p:
        assert len(list(p)) == 40
    records = [json.loads(line) for line in out.read_text().splitlines()]
    dets = [d for r in records for d in r["detections"]]
    assert len(dets) > 40
    assert all(len(d["keypoints"]) == 5 and all(len(k) == 3 for k in d["keypoints"]) for d in dets)
    assert records[0]["keypoint_names"] == list(KEYPOINT_NAMES)
