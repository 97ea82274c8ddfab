"""The bundled ONNX models: shapes, metadata, both layouts equal, accuracy on held-out data."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from pipeline import Pipeline
from pipeline.app.cli import main as cli_main
from pipeline.app.evaluate import evaluate
from pipeline.infer.layouts import recognise
from pipeline.infer.model import Model
from pipeline.zoo import BUNDLED
from sources.scene import SyntheticScene


@pytest.mark.parametrize("name,layout,det_shape", [
    ("shapes-yolov8seg", "yolov8-seg", ["batch", 39, "anchors"]),
    ("shapes-yolov5seg", "yolov5-seg", ["batch", "anchors", 40]),
])
def test_bundled_files_shapes_and_metadata(name, layout, det_shape):
    path = BUNDLED[name]
    assert path.stat().st_size <= 5 * 1024 * 1024
    m = onnx.load(str(path))
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["task"] == "segment" and meta["stride"] == "32" and meta["imgsz"] == "[640, 640]"
    assert eval(meta["names"]) == {0: "circle", 1: "rectangle", 2: "triangle"}  # noqa: S307 - our own file
    dims = [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in m.graph.output]
    assert dims[0] == det_shape
    assert dims[1] == ["batch", 32, "proto_height", "proto_width"]
    inp = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert inp == ["batch", 3, "height", "width"], "dynamic like Ultralytics' dynamic exports"
    assert recognise([tuple(d) for d in dims], 3).name == layout
    # Fully convolutional, anchors from the input size: a 384x640 letterbox (Ultralytics') runs.
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out0, protos = session.run(None, {"images": np.zeros((1, 3, 384, 640), np.float32)})
    assert protos.shape == (1, 32, 96, 160) and 5040 in out0.shape


def test_both_layouts_give_the_same_detections(heldout_clip):
    import av

    v8 = Model.load(BUNDLED["shapes-yolov8seg"], intra_op_threads=2)
    v5 = Model.load(BUNDLED["shapes-yolov5seg"], intra_op_threads=2)
    assert (v8.layout.name, v5.layout.name) == ("yolov8-seg", "yolov5-seg")
    with av.open(str(heldout_clip[0])) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(4), c.decode(video=0))]
    a, b = v8.infer(frames), v5.infer(frames)  # a batch of 4: the dynamic batch axis
    assert sum(len(d) for d in a) > 10
    for da, db in zip(a, b):
        assert len(da) == len(db)
        np.testing.assert_array_equal(da.class_id, db.class_id)
        np.testing.assert_allclose(da.xyxy, db.xyxy, atol=0.01)
        np.testing.assert_allclose(da.confidence, db.confidence, atol=1e-4)
        for ma, mb in zip(da.masks, db.masks):
            assert np.array_equal(ma, mb)


def test_fixed_batch_model_is_padded(tmp_path):
    """A model exported with a fixed batch of 4: batches of fewer frames are padded."""
    m = onnx.load(str(BUNDLED["shapes-yolov8seg"]))
    for value in [*m.graph.input, *m.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 4
    path = tmp_path / "fixed4.onnx"
    onnx.save(m, str(path))
    fixed = Model.load(path, intra_op_threads=2)
    dynamic = Model.load(BUNDLED["shapes-yolov8seg"], intra_op_threads=2)
    assert fixed.batch_limit == 4
    frames = [SyntheticScene(3).step()[0] for _ in range(2)]
    a, b = fixed.infer(frames), dynamic.infer(frames)
    assert len(a) == 2 and [len(d) for d in a] == [len(d) for d in b]
    np.testing.assert_allclose(a[1].xyxy, b[1].xyxy, atol=0.05)
    cfg = {"streams": [{"id": "s", "source": {"type": "synthetic", "frames": 5, "width": 320, "height": 180}}],
           "model": {"path": str(path)}, "batching": {"max_batch_size": 8}}
    with Pipeline.from_config(cfg) as p:
        assert [r.frame_index for r in p] == list(range(5))
    assert p.inference.max_batch_size == 4, "never more than the model's fixed batch"


def test_info_reports_layout_classes_and_providers(capsys):
    assert cli_main(["info", "shapes-yolov5seg"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "yolov5-seg" and info["classes"] == ["circle", "rectangle", "triangle"]
    assert info["input_hw"] == [640, 640] and info["batch"] == "dynamic"
    assert info["active_providers"] == ["CPUExecutionProvider"] and info["provider_fallback"] is False


def test_provider_fallback_is_detected_and_reported(caplog):
    # This CPU build has no CUDA provider: ONNX Runtime would silently run on the CPU.
    model = Model.load(BUNDLED["shapes-yolov8seg"], providers=["CUDAExecutionProvider", "CPUExecutionProvider"], warm_up=False)
    assert model.backend.fell_back is True
    assert model.info()["active_providers"] == ["CPUExecutionProvider"]
    assert any("fell back" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("allow_spinning,entry", [("unset", "0"), (None, None), (False, "0"), (True, "1")])
def test_allow_spinning_reaches_the_session(allow_spinning, entry):
    # Unset, vidpipe's default (off) is applied; null leaves ONNX Runtime's own (spinning, no
    # entry); set, both thread pools are told.
    spinning = {} if allow_spinning == "unset" else {"allow_spinning": allow_spinning}
    model = Model.load("shapes-yolov8seg", intra_op_threads=1, warm_up=False, **spinning)
    options = model.backend.session.get_session_options()

    def config_entry(key: str) -> str | None:
        try:
            return options.get_session_config_entry(key)
        except RuntimeError:  # ORT raises for a key never set
            return None

    for pool in ("intra_op", "inter_op"):
        assert config_entry(f"session.{pool}.allow_spinning") == entry
    assert model.backend.options.allow_spinning is (False if allow_spinning == "unset" else allow_spinning)


def _heldout_run(heldout_clip, tmp_path, interval: int) -> dict:
    clip, gt = heldout_clip
    out = tmp_path / f"heldout-{interval}.jsonl"
    cfg = {"streams": [{"id": "heldout", "source": {"type": "file", "path": str(clip)}, "infer_interval": interval}],
           "model": {"intra_op_threads": 2, "postprocess": {"confidence": 0.01, "iou_threshold": 0.5}},
           "tracker": {"type": "bytetrack"},
           "sinks": [{"type": "jsonl", "path": str(out)}]}
    Pipeline.from_config(cfg).run(handle_signals=False)
    m = evaluate(out, gt)
    if interval == 1:  # the tracking figures equal TrackEval's on the same ground truth and results
        from pipeline.app.evaluate import frames_of, load_gt
        from pipeline.wire.parse import read_records
        from tests.trackeval_ref import trackeval_metrics

        ref = trackeval_metrics(*frames_of(load_gt(gt), read_records(out)))
        assert all(abs(m[k] - ref[k]) < 5e-4 for k in ("hota", "deta", "assa", "mota", "idf1")), (m, ref)
        assert m["id_switches"] == ref["id_switches"], (m, ref)
    return m


def test_heldout_clip_accuracy_through_the_pipeline(heldout_clip, tmp_path):
    """The model card's claims on seed 7 (never trained on), through the whole pipeline.

    Measured on the development machine: box / mask mAP50 0.936 / 0.946, MOTA 0.914,
    IDF1 0.916, HOTA 0.848, 1 ID switch (equal to TrackEval's figures, checked here).
    IDF1 is asserted with 0.01 of slack for floating-point differences between CPUs (ONNX
    Runtime picks kernels by instruction set)."""
    m = _heldout_run(heldout_clip, tmp_path, 1)
    assert m["frames"] == 300
    assert m["mask_map50"] >= 0.90, m
    assert m["box_map50"] >= 0.90, m
    assert m["mota"] >= 0.85, m
    assert m["idf1"] >= 0.90, m
    assert m["id_switches"] <= 3, m


def test_heldout_tracking_with_inference_every_second_frame(heldout_clip, tmp_path):
    """infer_interval 2: measured IDF1 0.903 (0.871 before issue 20's tracker; target 0.85)."""
    m = _heldout_run(heldout_clip, tmp_path, 2)
    assert m["idf1"] >= 0.85, m
