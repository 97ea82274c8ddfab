"""ONNX Runtime CPU inference time of the bundled model at 640×640 and at 384×640 (the input a
1280×720 frame gets with ``model.rect``, the default for this dynamic model), and of the same
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

from benchmarks.common import table  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402

NAME = "model"
TITLE = "Model (ONNX Runtime CPU)"


def time_model(path: Path, hw: tuple[int, int], threads: int, repeat: int) -> float:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, *hw), dtype=np.float32)
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

        from training.net import ExportYolov8, YoloSeg
    except ImportError:
        return None
    path = directory / f"arch-{size}.onnx"
    torch.onnx.export(ExportYolov8(YoloSeg(3).eval()), (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                      opset_version=17, input_names=["images"], output_names=["output0", "output1"])
    return path


def measure(repeat: int = 30) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [("bundled shapes-yolov8seg", (640, 640), default_model_path()),
                  ("bundled, `rect` input of 1280×720", (384, 640), default_model_path())]
        p320 = export_at(320, Path(tmp))
        if p320 is not None:
            models.append(("same architecture", (320, 320), p320))
        for name, hw, path in models:
            for threads in (1, 2):
                rows.append({"model": name, "hw": list(hw), "threads": threads, "ms": time_model(path, hw, threads, repeat)})
    return {"repeat": repeat, "rows": rows}


def render(data: dict) -> str:
    cells: dict[tuple[str, tuple[int, int]], dict[int, float]] = {}
    for r in data["rows"]:
        hw = tuple(r["hw"]) if "hw" in r else (r["size"], r["size"])
        cells.setdefault((r["model"], hw), {})[r["threads"]] = r["ms"]
    body = [[f"{w}×{h} ({m})", f"{c.get(1, float('nan')):.1f} ms", f"{c.get(2, float('nan')):.1f} ms"]
            for (m, (h, w)), c in cells.items()]
    ms640 = cells.get(("bundled shapes-yolov8seg", (640, 640)), {}).get(2)
    text = [f"Batch 1, median of {data['repeat']} runs, CPU execution provider.", "",
            table(["input", "ORT 1 thread", "ORT 2 threads"], body)]
    if ms640 is not None:
        text += ["", f"Target ≤ 40 ms at 640 with 2 threads: {ms640:.1f} ms, {'met' if ms640 <= 40 else 'not met'}."]
    if not any(hw == (320, 320) for _, hw in cells):
        text += ["", "(The 320×320 export needs the `[train]` extra: PyTorch.)"]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    data = measure(args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
