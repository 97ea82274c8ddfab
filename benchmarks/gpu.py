"""GPU paths, on a machine with an NVIDIA GPU: ONNX Runtime CUDA (and TensorRT provider,
when present) throughput at batch 1/4/8 with the bundled model and a YOLOv5s-sized
segmentation model (random weights: speed does not depend on them; needs PyTorch to export
it), GPU vs CPU post-processing (with parity), and NVDEC vs software decoding.

On a machine without a GPU it says so and measures nothing.

    python benchmarks/gpu.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bench_clip, gpu_names, table  # noqa: E402
from pipeline.infer.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from pipeline.infer.config import BackendOptions  # noqa: E402
from pipeline.infer.kernels import cuda as kernels_cuda  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402

NAME = "gpu"
TITLE = "GPU"
BATCHES = (1, 4, 8)


def yolov5s_sized(directory: Path) -> tuple[Path, int] | None:
    """A YOLOv5s-sized seg network (80 classes, widths 32…512) exported with dynamic batch."""
    try:
        import torch

        from training.net import ExportYolov5, YoloSeg
    except ImportError:
        return None
    net = YoloSeg(80, widths=(32, 64, 128, 256, 512)).eval()
    path = directory / "yolov5s-sized-seg.onnx"
    torch.onnx.export(ExportYolov5(net), (torch.zeros(1, 3, 640, 640),), str(path), dynamo=False, opset_version=17,
                      input_names=["images"], output_names=["output0", "output1"],
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}, "output1": {0: "batch"}})
    return path, sum(p.numel() for p in net.parameters())


def time_backend(path: Path, providers: list, batch: int, repeat: int, cache: Path) -> float:
    backend = OnnxRuntimeBackend(path, BackendOptions(providers=providers, fp16=True, engine_cache_dir=cache), max_batch_size=8)
    if backend.fell_back:
        return float("nan")
    blob = np.random.default_rng(0).random((batch, 3, 640, 640), dtype=np.float32)
    for _ in range(5):
        backend.run(blob)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        backend.run(blob)
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def postprocess_times(repeat: int) -> dict:
    from pipeline.infer.postprocess import postprocess_segmentation
    from tests.cuda_parity import compare
    from tests.reference import make_raw_outputs

    out0, protos = make_raw_outputs(np.random.default_rng(20), "yolov5-seg", 20)
    kw = dict(layout="yolov5-seg", input_hw=(640, 640), source_hw=(1080, 1920), iou_threshold=0.5)
    d_out, d_protos = kernels_cuda.to_device(out0), kernels_cuda.to_device(protos)
    result = {}
    for name, args in (("cpu", (out0, protos, {})), ("cuda", (d_out, d_protos, {"device": "cuda"}))):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            postprocess_segmentation(args[0], args[1], **kw, **args[2])
            times.append((time.perf_counter() - t) * 1e3)
        result[name] = statistics.median(times[3:])
    result["parity"] = [compare("yolov5-seg", m, 20, (640, 640), (1080, 1920), 8400, 0) for m in ("accurate", "fast")]
    return result


def measure(repeat: int = 50) -> dict:
    import onnxruntime as ort

    names = gpu_names()
    if "CUDAExecutionProvider" not in ort.get_available_providers() or not names:
        return {"skipped": f"no NVIDIA GPU with onnxruntime-gpu here (GPUs: {names or 'none'}, "
                           f"ORT providers: {ort.get_available_providers()})"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [("bundled (3 classes)", default_model_path(), None)]
        extra = yolov5s_sized(Path(tmp))
        if extra:
            models.append(("YOLOv5s-sized seg (80 classes)", extra[0], extra[1]))
        provider_sets = [["CUDAExecutionProvider"]]
        if "TensorrtExecutionProvider" in ort.get_available_providers():
            provider_sets.append(["TensorrtExecutionProvider", "CUDAExecutionProvider"])
        for label, path, params in models:
            for providers in provider_sets:
                for b in BATCHES:
                    rows.append({"model": label, "params": params, "provider": providers[0], "batch": b,
                                 "images_per_s": time_backend(path, providers, b, repeat, Path(tmp) / "engines")})
    clip = bench_clip(300)
    from benchmarks.decode import vidpipe_seconds

    decode = {}
    for label, hw in (("software", None), ("nvdec", "cuda")):
        seconds, frames = vidpipe_seconds(clip, hwaccel=hw)
        decode[label] = frames / seconds
    return {"gpu": names[0], "rows": rows, "postprocess_ms": postprocess_times(repeat), "decode_fps": decode}


def render(data: dict) -> str:
    if "skipped" in data:
        return f"Not measured: {data['skipped']}."
    body = [[r["model"], r["provider"].replace("ExecutionProvider", ""), r["batch"], f"{r['images_per_s']:.0f}"]
            for r in data["rows"]]
    pp = data["postprocess_ms"]
    parity = ", ".join(f"{c['mode']}: {c['gpu']} = {c['cpu']} detections, min mask IoU {c['min_mask_iou']:.4f}"
                       for c in pp["parity"])
    dec = data["decode_fps"]
    return "\n".join([
        f"GPU: {data['gpu']}. ONNX Runtime with I/O binding, FP16 for the TensorRT provider, 640×640 input.", "",
        table(["model", "provider", "batch", "images/s"], body), "",
        f"Post-processing, 20 objects on a 1080p frame, accurate masks, RLE excluded: CPU {pp['cpu']:.2f} ms, "
        f"GPU {pp['cuda']:.2f} ms. Parity: {parity}.", "",
        f"Decoding 300 frames 1280×720 H.264 to BGR arrays: software {dec['software']:.0f} fps, NVDEC {dec['nvdec']:.0f} fps.",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    data = measure(args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
