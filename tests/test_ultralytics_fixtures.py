"""The committed Ultralytics fixtures (tests/fixtures/ultralytics, written by
``make ultralytics-fixtures``) are complete and consistent, so a broken fixture commit is
caught here rather than as a puzzling parity failure: every file the manifest names exists
with its recorded hash, every model's inputs, outputs and metadata are what ONNX Runtime
sees, and every predictions file has the fields its task needs, sized to its frames.
Also: the bundled models carry the metadata Ultralytics' loader needs (not ``batch: -1``), and
the manifest records that the yolov8-seg one ran in Ultralytics' predictor."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pipeline.zoo import BUNDLED

ROOT = Path(__file__).resolve().parent / "fixtures" / "ultralytics"
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
MODELS = {m["name"]: m for m in MANIFEST["models"]}
# The rows of issue 15's table that the fixtures must cover.
REQUIRED = {"yolo26-seg-e2e", "yolo11-seg-nms", "yolo26-det-e2e", "yolo11-pose", "yolo26-pose-e2e", "yolo11-cls",
            "yolo26-sem", "yolo26-seg", "yolo11-det", "yolo26-det"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_layout_is_there_and_small():
    assert MANIFEST["format"] == "vidpipe.ultralytics-fixtures/1"
    assert REQUIRED <= set(MODELS)
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 5 * 1024 * 1024
    for m in MODELS.values():
        assert (ROOT / m["file"]).stat().st_size == m["bytes"] < 1024 * 1024, m["name"]


def test_frames_exist_with_their_hash_and_size():
    assert len(MANIFEST["frames"]) >= 3
    for f in MANIFEST["frames"]:
        path = ROOT / f["file"]
        assert _sha(path) == f["sha256"], f["file"]
        image = cv2.imread(str(path))
        assert image.shape == (f["height"], f["width"], 3)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_is_what_onnxruntime_sees(name):
    m = MODELS[name]
    path = ROOT / m["file"]
    assert _sha(path) == m["sha256"]
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [[i.name, list(i.shape)] for i in s.get_inputs()] == [[i["name"], i["shape"]] for i in m["inputs"]]
    assert [[o.name, list(o.shape)] for o in s.get_outputs()] == [[o["name"], o["shape"]] for o in m["outputs"]]
    assert dict(s.get_modelmeta().custom_metadata_map) == m["metadata"]
    assert m["metadata"]["task"] == m["task"]
    # The shapes are real: one run on zeros gives exactly them (static export, batch 1).
    (inp,) = s.get_inputs()
    outs = s.run(None, {inp.name: np.zeros(inp.shape, np.float32)})
    assert [list(o.shape) for o in outs] == [o["shape"] for o in m["outputs"]]


def _rle_area(rle: dict, hw: tuple[int, int]) -> int:
    assert rle["size"] == list(hw)
    counts = rle["counts"]
    assert sum(counts) == hw[0] * hw[1] and all(c >= 0 for c in counts)
    return sum(counts[1::2])


def _check_frame(rec: dict, task: str, hw: tuple[int, int], meta: dict) -> int:
    """Fields of one frame's prediction; returns how many objects/classes it holds."""
    if task == "classify":
        nc = len(ast.literal_eval(meta["names"]))
        ids, probs = rec["top5"]["ids"], rec["top5"]["probs"]
        assert len(ids) == min(5, nc) == len(set(ids)) and len(rec["probs"]) == nc
        assert probs == sorted(probs, reverse=True)
        assert ids == list(np.argsort(-np.asarray(rec["probs"]), kind="stable")[: len(ids)])
        return len(ids)
    if task == "semantic":
        class_map = cv2.imread(str(ROOT / rec["class_map"]), cv2.IMREAD_UNCHANGED)
        assert class_map.shape == hw and class_map.dtype == np.uint8
        assert class_map.max() < len(ast.literal_eval(meta["names"]))
        return len(np.unique(class_map))
    n = len(rec["boxes"])
    assert len(rec["scores"]) == len(rec["classes"]) == n
    h, w = hw
    for (x0, y0, x1, y1), score in zip(rec["boxes"], rec["scores"]):
        assert -1 <= x0 <= x1 <= w + 1 and -1 <= y0 <= y1 <= h + 1 and 0 < score <= 1
    if task == "segment":
        assert len(rec["masks"]) == n and all(_rle_area(r, hw) > 0 for r in rec["masks"])
    if task == "pose":
        k, dims = ast.literal_eval(meta["kpt_shape"])
        assert np.asarray(rec["keypoints"]).reshape(n, k, -1).shape[2] == dims
    return n


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predictions_cover_every_frame_with_the_fields_of_their_task(name):
    m = MODELS[name]
    preds = json.loads((ROOT / m["predictions"]).read_text())
    assert preds["model"] == m["file"] and preds["task"] == m["task"]
    assert {"conf", "iou", "imgsz", "max_det", "retina_masks"} <= set(preds["settings"])
    frames = {f["name"]: (f["height"], f["width"]) for f in MANIFEST["frames"]}
    assert [r["frame"] for r in preds["frames"]] == list(frames)
    found = [_check_frame(r, m["task"], frames[r["frame"]], m["metadata"]) for r in preds["frames"]]
    assert sum(found) > 0, "parity on empty predictions would prove nothing"


@pytest.mark.parametrize("how", ["plain", "rect_false"])
def test_bundled_yolov8seg_model_ran_in_ultralytics(how):
    """``YOLO("shapes-yolov8seg.onnx").predict(frame)`` as a user comparing tools would try it
    (recorded by ``make ultralytics-fixtures``)."""
    outcome = MANIFEST["bundled_in_ultralytics"]["shapes-yolov8seg.onnx"][how]
    assert outcome["loads"] and outcome["detections"] == outcome["masks"] > 0


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_model_metadata_loads_in_ultralytics(name):
    """Ultralytics splits batches by ``batch`` (it failed on -1) and, for a dynamic export,
    letterboxes to the smallest rectangle: the input's height and width are symbolic."""
    model = onnx.load(str(BUNDLED[name]))
    meta = {p.key: p.value for p in model.metadata_props}
    assert int(meta["batch"]) >= 1
    assert ast.literal_eval(meta["args"])["dynamic"] is True
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    assert ast.literal_eval(meta["imgsz"]) == [640, 640]
