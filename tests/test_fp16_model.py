"""Half-precision exports (Ultralytics ``half=True``): float16 image input and float16
outputs. vidpipe casts its input blob to the model's type and widens the outputs, so the
results match the float32 model's (issue 14, case 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.infer.model import Model
from pipeline.zoo import default_model_path

REPO = Path(__file__).resolve().parents[1]


def half_io_copy(src: Path, dst: Path) -> Path:
    """``src`` with a float16 input and float16 outputs (Casts at both ends)."""
    model = onnx.load(str(src))
    graph = model.graph
    image = graph.input[0]
    inner_in = image.name + "_f32"
    for node in graph.node:
        node.input[:] = [inner_in if n == image.name else n for n in node.input]
    image.type.tensor_type.elem_type = TensorProto.FLOAT16
    casts = [helper.make_node("Cast", [image.name], [inner_in], to=TensorProto.FLOAT)]
    for out in graph.output:
        inner_out = out.name + "_f32"
        for node in graph.node:
            node.output[:] = [inner_out if n == out.name else n for n in node.output]
        casts.append(helper.make_node("Cast", [inner_out], [out.name], to=TensorProto.FLOAT16))
        out.type.tensor_type.elem_type = TensorProto.FLOAT16
    graph.node.insert(0, casts[0])
    graph.node.extend(casts[1:])
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def half_model(tmp_path_factory) -> Path:
    return half_io_copy(default_model_path(), tmp_path_factory.mktemp("fp16") / "half.onnx")


def test_half_model_gives_the_float_models_detections(half_model, small_clip, model):
    import av

    with av.open(str(small_clip)) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(4), c.decode(video=0))]
    half = Model.load(half_model, intra_op_threads=1)
    assert half.backend.input_dtype == np.float16
    got, want = half.infer(frames), model.infer(frames)
    assert sum(len(d) for d in want) > 0
    for a, b in zip(got, want):
        assert a.xyxy.dtype == b.xyxy.dtype and len(a) == len(b)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1.0)  # float16 input quantises pixels by < 1/2048


def test_half_model_runs_from_the_cli(half_model, small_clip, tmp_path):
    cfg = tmp_path / "half.yaml"
    cfg.write_text(f"streams: [{{id: c, source: {{type: file, path: {small_clip}}}}}]\n"
                   f"model: {{path: {half_model}, intra_op_threads: 1}}\n"
                   f"sinks: [{{type: jsonl, path: {tmp_path / 'r.jsonl'}}}]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(cfg), "-q"], env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 40
