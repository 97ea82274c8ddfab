"""ONNX Runtime CPU inference time of the bundled model (640×640) and of the same
architecture exported at 320×320 (needs the ``[train]`` extra; the weights do not change
the speed), at batch 1 with 1 and 2 intra-op threads.

    python benchmarks/model_speed.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.zoo import default_model_path  # noqa: E402


def time_model(path: Path, size: int, threads: int, repeat: int) -> float:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    for _ in range(5):
        sess.run(None, {"images": x})
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        sess.run(None, {"images": x})
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def export_at(size: int, directory: Path) -> Path | None:
    try:
        import torch

        from pipeline.zoo.net import ExportYolov8, YoloSeg
    except ImportError:
        return None
    path = directory / f"arch-{size}.onnx"
    torch.onnx.export(ExportYolov8(YoloSeg(3).eval()), (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                      opset_version=17, input_names=["images"], output_names=["output0", "output1"])
    return path


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [("bundled shapes-yolov8seg", 640, default_model_path())]
        p320 = export_at(320, Path(tmp))
        if p320 is not None:
            models.append(("same architecture", 320, p320))
        for name, size, path in models:
            for threads in (1, 2):
                rows.append({"model": name, "size": size, "threads": threads, "ms": time_model(path, size, threads, args.repeat)})
    print(f"{'model':<26} {'input':>7} {'threads':>7} {'median ms':>10}")
    for r in rows:
        print(f"{r['model']:<26} {r['size']:>4}x{r['size']:<3}{r['threads']:>6} {r['ms']:>10.2f}")
    return rows


if __name__ == "__main__":
    main()
