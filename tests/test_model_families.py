"""Every model family of issue 15 as a real ONNX file: tiny graphs built with onnx.helper
whose outputs are constant tensors of each layout, with Ultralytics-style metadata (values
as text: "True", "[17, 3]"). Each loads through ``Model.load``, is named by ``vidpipe info``,
and runs through the Pipeline on a real encoded clip to a JSONL sink."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pipeline import Pipeline
from pipeline.app.cli import main as cli_main
from pipeline.core.errors import ModelError
from pipeline.infer.model import Model
from pipeline.wire.formats import box_from_wire

NAMES = "{0: 'person', 1: 'car', 2: 'dog'}"
# The 640×360 clip in a 64×64 input: scale 0.1, 14 rows of padding at the top.
IN_HW = (64, 64)


def const_model(path: Path, outputs: list[np.ndarray], **metadata: str) -> Path:
    """An ONNX model (dynamic batch) that outputs ``outputs`` (each with a batch axis of 1)
    for every image of the batch."""
    nodes = [helper.make_node("Shape", ["images"], ["batch"], start=0, end=1)]
    inits, outs = [], []
    for i, arr in enumerate(outputs):
        inits += [numpy_helper.from_array(arr, f"value{i}"), numpy_helper.from_array(np.array(arr.shape[1:], np.int64), f"dims{i}")]
        nodes += [helper.make_node("Concat", ["batch", f"dims{i}"], [f"shape{i}"], axis=0),
                  helper.make_node("Expand", [f"value{i}", f"shape{i}"], [f"output{i}"])]
        kind = TensorProto.INT64 if arr.dtype == np.int64 else TensorProto.FLOAT
        outs.append(helper.make_tensor_value_info(f"output{i}", kind, ["batch", *arr.shape[1:]]))
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, *IN_HW])
    model = helper.make_model(helper.make_graph(nodes, "constant", [image], outs, inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"imgsz": str(list(IN_HW)), "batch": "1", **metadata})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _end2end_rows(extra: int) -> np.ndarray:
    rows = np.zeros((1, 300, 6 + extra), np.float32)
    rows[0, 0, :6] = [10, 20, 30, 40, 0.9, 2]  # → source (100, 60)-(300, 260)
    rows[0, 1, :6] = [0, 14, 64, 50, 0.2, 0]  # below confidence
    return rows


def _keypoints(k: int) -> np.ndarray:
    """(k*3,) keypoints in input pixels: (10 + i, 20 + i, 0.9)."""
    return np.stack([10 + np.arange(k), 20 + np.arange(k), np.full(k, 0.9)], 1).reshape(-1).astype(np.float32)


def _models(tmp: Path) -> dict[str, tuple[Path, str, str]]:
    """name → (model file, task, layout)."""
    seg = _end2end_rows(32)
    seg[0, 0, 6] = 1.0
    protos = np.full((1, 32, 16, 16), -1.0, np.float32)
    protos[0, 0] = 1.0
    pose_e2e = _end2end_rows(17 * 3)
    pose_e2e[0, 0, 5:] = [0, *_keypoints(17)]  # class 0: the pose model's only class
    classic = np.zeros((1, 4 + 1 + 17 * 3, 20), np.float32)
    classic[0, :5, 3] = [20, 30, 20, 20, 0.8]  # xywh → xyxy (10, 20)-(30, 40)
    classic[0, 5:, 3] = _keypoints(17)
    semantic = np.zeros((1, 64, 64), np.int64)
    semantic[0, :, 32:] = 2
    logits = np.zeros((1, 3, 16, 16), np.float32)
    logits[0, 1, :, :8] = 1.0
    logits[0, 2, :, 8:] = 1.0
    probs = np.array([[0.05, 0.7, 0.25]], np.float32)
    e2e = {"end2end": "True", "names": NAMES}
    pose = {"task": "pose", "kpt_shape": "[17, 3]", "names": "{0: 'person'}"}
    specs = {
        "end2end-detect": ([_end2end_rows(0)], {"task": "detect", **e2e}, "detect", "end2end"),
        "end2end-seg": ([seg, protos], {"task": "segment", **e2e}, "segment", "end2end-seg"),
        "nms-seg": ([seg, protos], {"task": "segment", "names": NAMES, "args": "{'batch': 1, 'nms': True}"},
                    "segment", "end2end-seg"),
        "end2end-pose": ([pose_e2e], {**pose, "end2end": "True"}, "pose", "end2end-pose"),
        "classic-pose": ([classic], pose, "pose", "yolov8-pose"),
        "classify": ([probs], {"task": "classify", "names": NAMES}, "classify", "classify"),
        "semantic": ([semantic], {"task": "semantic", "names": NAMES}, "semantic", "semantic"),
        "semantic-logits": ([logits], {"task": "semantic", "names": NAMES}, "semantic", "semantic-logits"),
    }
    return {name: (const_model(tmp / f"{name}.onnx", outs, **meta), task, layout)
            for name, (outs, meta, task, layout) in specs.items()}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[Path, str, str]]:
    return _models(tmp_path_factory.mktemp("families"))


def test_info_names_task_and_layout_of_every_family(models, capsys):
    for path, task, layout in models.values():
        assert cli_main(["info", str(path)]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["task"], info["layout"]) == (task, layout), path.name
        assert Model.load(path, warm_up=False).task == task
    pose = json.loads((cli_main(["info", str(models["classic-pose"][0])]), capsys.readouterr().out)[1])
    assert pose["kpt_shape"] == [17, 3] and pose["keypoint_names"][0] == "nose"


def _run(path: Path, clip: Path, out: Path, **postprocess) -> list:
    cfg = {"streams": [{"id": "cam", "source": {"type": "file", "path": str(clip)}}],
           "model": {"path": str(path), "intra_op_threads": 1, "postprocess": postprocess},
           "sinks": [{"type": "jsonl", "path": str(out)}], "batching": {"max_batch_size": 4}}
    with Pipeline.from_config(cfg) as p:
        results = list(p)
    assert len(out.read_text().splitlines()) == len(results) == 40
    return results


@pytest.mark.parametrize("name", ["end2end-detect", "end2end-seg", "nms-seg", "end2end-pose", "classic-pose"])
def test_detection_families_through_the_pipeline(models, name, small_clip, tmp_path):
    results = _run(models[name][0], small_clip, tmp_path / "r.jsonl")
    classic = name == "classic-pose"
    for r in results:
        d = r.detections
        assert len(d) == 1 and d.confidence.tolist() == pytest.approx([0.8 if classic else 0.9])
        np.testing.assert_allclose(d.xyxy, [[100, 60, 300, 260]], atol=1e-3)
        assert d.category == ["person" if "pose" in name else "dog"]
        if "seg" in name:
            assert d.masks[0].shape == (200, 200) and d.masks[0].all()
        if "pose" in name:
            k = np.arange(17)
            np.testing.assert_allclose(d.keypoints[0], np.stack([100 + 10 * k, 60 + 10 * k, np.full(17, 0.9)], 1),
                                       rtol=1e-5)
    record = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[7])
    np.testing.assert_allclose([box_from_wire(det["bounding-box"]) for det in record["detections"]],
                               [[100.0, 60.0, 300.0, 260.0]], atol=0.02)


def test_classification_through_the_pipeline_with_top_k(models, small_clip, tmp_path):
    results = _run(models["classify"][0], small_clip, tmp_path / "r.jsonl", top_k=2, confidence=0.1)
    for r in results:
        c = r.detections.classification
        assert len(r.detections) == 0 and c.category == ["car", "dog"]
        assert c.confidence.tolist() == pytest.approx([0.7, 0.25])


@pytest.mark.parametrize("name", ["semantic", "semantic-logits"])
def test_semantic_through_the_pipeline_class_map_in_source_pixels(models, name, small_clip, tmp_path):
    want = np.zeros((360, 640), np.uint8)
    want[:, 320:] = 2
    if name == "semantic-logits":
        want[:, :320] = 1
    for r in _run(models[name][0], small_clip, tmp_path / "r.jsonl"):
        np.testing.assert_array_equal(r.detections.semantic.class_map, want)


def test_pose_without_kpt_shape_and_wrong_keypoint_names_are_one_line(models, tmp_path, capsys):
    bare = const_model(tmp_path / "bare-pose.onnx", [np.zeros((1, 56, 20), np.float32)], task="pose",
                       names="{0: 'person'}")
    assert cli_main(["info", str(bare)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidpipe: error:") and "kpt_shape" in err and "\n" not in err
    assert Model.load(bare, warm_up=False, kpt_shape=(17, 3)).layout.name == "yolov8-pose"
    with pytest.raises(ModelError, match=r"bare-pose.onnx: kpt_shape must be \[keypoints, 2 or 3\], got \(17, 4\)"):
        Model.load(bare, warm_up=False, kpt_shape=(17, 4))
    with pytest.raises(ModelError, match="3 keypoint names, the model has 17 keypoints"):
        Model.load(models["classic-pose"][0], warm_up=False, keypoint_names=["a", "b", "c"])
    names_file = tmp_path / "kpts.txt"
    names_file.write_text("a\nb\n")
    with pytest.raises(ModelError, match=f"keypoint names file {names_file} gives 2 keypoint names"):
        Model.load(models["classic-pose"][0], warm_up=False, keypoint_names_file=names_file)
    names_file.write_text("".join(f"k{i}\n" for i in range(17)))
    assert Model.load(models["classic-pose"][0], warm_up=False, keypoint_names_file=names_file).keypoint_names[16] == "k16"
