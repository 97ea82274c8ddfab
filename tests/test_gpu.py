"""The GPU paths' selection and fallback logic, for real on a CPU-only machine: ONNX
Runtime provider options and fallback, I/O binding, NVDEC decoding falling back to software
on a real file, the TensorRT backend's missing-extra error, GPU post-processing falling
back, and the CUDA kernels themselves under Numba's CUDA simulator against the CPU kernels.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import Pipeline
from pipeline.core.errors import ModelError
from pipeline.infer.backends.onnxruntime import provider_options
from pipeline.infer.config import BackendOptions, PostprocessOptions
from pipeline.infer.kernels import cuda as kernels_cuda
from pipeline.infer.model import Model
from pipeline.zoo import default_model_path

REPO = Path(__file__).resolve().parents[1]
HAS_GPU = kernels_cuda.available()


def test_provider_options_follow_gpu_settings_and_explicit_options_win(tmp_path):
    gpu = BackendOptions(device_id=1, fp16=True, engine_cache_dir=tmp_path, workspace_gb=2)
    trt, cuda, cpu = provider_options(
        [("TensorrtExecutionProvider", {"trt_fp16_enable": False}), "CUDAExecutionProvider", "CPUExecutionProvider"],
        gpu, 8, "images", (640, 640), dynamic_batch=True)
    name, opts = trt
    assert name == "TensorrtExecutionProvider" and opts["device_id"] == 1
    assert opts["trt_fp16_enable"] is False  # the config's own option wins over fp16: true
    assert opts["trt_engine_cache_enable"] is True and opts["trt_engine_cache_path"] == str(tmp_path)
    assert opts["trt_max_workspace_size"] == 2 * 2**30
    assert opts["trt_profile_min_shapes"] == "images:1x3x640x640" and opts["trt_profile_max_shapes"] == "images:8x3x640x640"
    assert cuda == ("CUDAExecutionProvider", {"device_id": 1, "arena_extend_strategy": "kSameAsRequested"})
    assert cpu == "CPUExecutionProvider"
    fixed = provider_options(["TensorrtExecutionProvider"], gpu, 8, "images", (320, 320), dynamic_batch=False)[0][1]
    assert "trt_profile_min_shapes" not in fixed  # a fixed-batch model has exactly one shape


def test_provider_fallback_is_reported_in_info_logs_and_summary(small_clip, tmp_path, caplog):
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}],
           "model": {"providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                     "fp16": True, "engine_cache_dir": str(tmp_path / "engines")}}
    with caplog.at_level(logging.WARNING, logger="vidpipe.backend"):
        pipeline = Pipeline.from_config(cfg)
    assert any("fell back" in r.getMessage() for r in caplog.records)
    info = pipeline.model.info()
    assert info["requested_providers"][:2] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert info["active_providers"] == ["CPUExecutionProvider"] and info["provider_fallback"] is True
    summary = pipeline.run(handle_signals=False)
    assert summary["providers"] == ["CPUExecutionProvider"] and summary["provider_fallback"] is True
    assert summary["requested_providers"][0] == "TensorrtExecutionProvider" and summary["results"] == 40


def test_vidpipe_info_shows_the_fallback():
    proc = subprocess.run([sys.executable, "-m", "pipeline", "info", "shapes-yolov8seg", "--providers",
                           "CUDAExecutionProvider", "CPUExecutionProvider"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["provider_fallback"] is True and info["active_providers"] == ["CPUExecutionProvider"]
    assert "fell back" in proc.stderr


def test_onnxruntime_gpu_without_cuda_is_caught_falling_back(tmp_path):
    """onnxruntime-gpu on a machine without CUDA lists TensorRT and CUDA as available, fails
    to load them when the session is created, and runs on the CPU without an error: vidpipe
    reads back the providers in use and reports the fallback (`make test` installs that build
    beside the CPU one, in .venv/ort-gpu)."""
    site = Path(sys.prefix) / "ort-gpu"
    if not (site / "onnxruntime").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{site} is missing: `make test` installs onnxruntime-gpu there")
        pytest.skip("onnxruntime-gpu not installed beside the CPU build (make test does it)")
    if HAS_GPU:
        pytest.skip("a GPU is here: the GPU build may really run")
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}"}
    probe = subprocess.run([sys.executable, "-c", "import onnxruntime as o, json; print(json.dumps(o.get_available_providers()))"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert "CUDAExecutionProvider" in json.loads(probe.stdout)  # "available", though nothing can load it
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    info = subprocess.run([sys.executable, "-m", "pipeline", "info", "shapes-yolov8seg", "--providers", *providers],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr[-2000:]
    described = json.loads(info.stdout)
    assert described["active_providers"] == ["CPUExecutionProvider"] and described["provider_fallback"] is True
    assert "ONNX Runtime fell back" in info.stderr
    config = tmp_path / "gpu.yaml"
    config.write_text(json.dumps({"streams": [{"id": "cam0", "source": {"type": "synthetic", "frames": 5}}],
                                  "model": {"providers": providers, "engine_cache_dir": str(tmp_path / "engines")}}))
    run = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config), "-q", "--summary", str(tmp_path / "s.json")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["provider_fallback"] is True and summary["providers"] == ["CPUExecutionProvider"] and summary["results"] == 5


def test_io_binding_gives_the_same_outputs_as_session_run():
    plain = Model.load(default_model_path(), intra_op_threads=1, warm_up=False)
    bound = Model.load(default_model_path(), intra_op_threads=1, warm_up=False, io_binding=True)
    assert plain.backend.io_binding is False and bound.backend.io_binding is True
    assert bound.info()["io_binding"] is True and bound.info()["output_device"] == "cpu"
    images = [np.random.default_rng(i).integers(0, 255, (360, 640, 3), np.uint8) for i in range(3)]
    blob, _ = plain.preprocess(images)
    for a, b in zip(plain.run(blob), bound.run(blob.copy())):
        assert a.shape == b.shape and np.array_equal(a, b)
    blob1, _ = plain.preprocess(images[:1])  # a smaller batch through the same binding
    assert [o.shape[0] for o in bound.run(blob1.copy())] == [1, 1]


def _jsonl_detections(path: Path) -> list:
    return [(r["frame"], [(d["category"], d["bounding-box"]) for d in r["detections"]])
            for r in map(json.loads, path.read_text().splitlines())]


def test_hwaccel_cuda_falls_back_to_software_on_a_real_file(small_clip, tmp_path, caplog):
    def run(hwaccel: str | None, name: str) -> dict:
        stream = {"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}
        if hwaccel:
            stream["hwaccel"] = hwaccel
        cfg = {"streams": [stream], "model": {"intra_op_threads": 1},
               "sinks": [{"type": "jsonl", "path": str(tmp_path / f"{name}.jsonl"), "mask_format": "none"}]}
        return Pipeline.from_config(cfg).run(handle_signals=False)

    with caplog.at_level(logging.WARNING, logger="vidpipe.decoder"):
        hw = run("cuda", "hw")
    software = run(None, "sw")
    if HAS_GPU:
        pytest.skip("a GPU is here: NVDEC decodes (checked by benchmarks/gpu.py)")
    warnings = [r.getMessage() for r in caplog.records if "hardware decoding (cuda) unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "decoding in software" in warnings[0]  # logged once, not per packet
    assert hw["streams"]["cam0"]["decoder"] == "h264 (software; cuda unavailable)"
    assert software["streams"]["cam0"]["decoder"] == "h264 (software)"
    assert hw["results"] == software["results"] == 40
    assert _jsonl_detections(tmp_path / "hw.jsonl") == _jsonl_detections(tmp_path / "sw.jsonl")


def test_tensorrt_backend_without_tensorrt_names_the_extra(tmp_path):
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    with pytest.raises(ModelError, match=r"pip install 'vidpipe\[trt\]'"):
        Model.load(default_model_path(), backend="tensorrt")
    config = tmp_path / "trt.yaml"
    config.write_text("streams: [{id: cam0, source: {type: synthetic, frames: 2}}]\nmodel: {backend: tensorrt, fp16: true}\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config), "-q"], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 2 and "vidpipe[trt]" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_gpu_postprocessing_falls_back_to_the_cpu_with_the_reason(caplog):
    if HAS_GPU:
        pytest.skip("a GPU is here")
    with caplog.at_level(logging.WARNING, logger="vidpipe.model"):
        gpu = Model.load(default_model_path(), intra_op_threads=1, postprocess=PostprocessOptions(device="cuda"))
    cpu = Model.load(default_model_path(), intra_op_threads=1)
    assert gpu.postprocess_device == "cpu" and gpu.info()["postprocess_fallback"]
    assert any("GPU post-processing asked for" in r.getMessage() for r in caplog.records)
    from sources.scene import SyntheticScene

    image, _ = SyntheticScene(5).step()
    a, b = gpu.infer([image])[0], cpu.infer([image])[0]
    assert len(a) > 0 and np.array_equal(a.xyxy, b.xyxy)


def test_cuda_kernels_match_the_cpu_kernels_in_the_simulator():
    """The real CUDA kernels, run by Numba's CUDA simulator (Python executes every GPU thread)."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "tests/cuda_parity.py"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    cases = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(cases) == 7 and cases[-1]["postprocess_device"] == "cuda"  # 6 raw-output cases, the bundled model
    for c in cases:
        assert c["cpu"] == c["gpu"] > 0, c
        assert c["same_boxes"] and c["same_scores"] and c["same_classes"] and c["same_shapes"], c
        assert c["min_mask_iou"] >= 0.99 and c["pixels"] > 0, c
