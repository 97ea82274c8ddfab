"""The model families' decoders with GPU post-processing (outputs as device arrays, the
CUDA kernels) against the CPU kernels, on the same raw outputs: end-to-end seg (masks from
device prototypes), classic pose (candidates selected on the device), classification and
semantic (device outputs copied back). Prints one JSON line per case.

Run under the Numba CUDA simulator on a CPU-only machine (tests/test_decoders.py does):
    NUMBA_ENABLE_CUDASIM=1 python tests/cuda_families.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.infer.config import PostprocessOptions  # noqa: E402
from pipeline.infer.kernels import cuda as kernels_cuda  # noqa: E402
from pipeline.infer.kernels.cpu import CpuKernels  # noqa: E402
from pipeline.infer.layouts import LayoutHints, recognise  # noqa: E402
from pipeline.infer.letterbox import Letterbox  # noqa: E402
from pipeline.infer.tasks import decoder_for  # noqa: E402

BOX = Letterbox.fit((60, 100), (64, 64))


def outputs(rng: np.random.Generator) -> dict[str, tuple[list[np.ndarray], LayoutHints]]:
    seg = np.zeros((1, 20, 6 + 8), np.float32)
    seg[0, :4, :4] = [[4, 16, 30, 40], [20, 20, 60, 48], [0, 12, 64, 52], [10, 30, 14, 34]]
    seg[0, :4, 4:6] = [[0.9, 0], [0.8, 1], [0.7, 2], [0.6, 0]]
    seg[0, :4, 6:] = rng.normal(size=(4, 8))
    protos = rng.normal(size=(1, 8, 16, 16)).astype(np.float32)
    pose = np.zeros((1, 4 + 3 + 2 * 3, 84), np.float32)
    pose[0, :4, :6] = rng.uniform([8, 16, 6, 6], [56, 48, 20, 20], size=(6, 4)).T
    pose[0, 4:7, :6] = rng.uniform(0, 1, size=(3, 6))
    pose[0, 7:, :6] = rng.uniform(0, 64, size=(6, 6))
    classify = rng.dirichlet(np.ones(3), size=1).astype(np.float32)
    semantic = rng.normal(size=(1, 3, 16, 16)).astype(np.float32)
    return {"end2end-seg": ([seg, protos], LayoutHints(end2end=True)),
            "yolov8-pose": ([pose], LayoutHints(task="pose", kpt_shape=(2, 3))),
            "classify": ([classify], LayoutHints()), "semantic-logits": ([semantic], LayoutHints())}


def compare(name: str, outs: list[np.ndarray], hints: LayoutHints) -> dict:
    layout = recognise([o.shape for o in outs], 3, None, hints)
    opts = PostprocessOptions(confidence=0.3, iou_threshold=0.5)
    cpu = decoder_for(layout, opts, "abc", CpuKernels()).decode(outs, 0, BOX)
    gpu = decoder_for(layout, opts, "abc", kernels_cuda.CudaKernels()).decode(
        [kernels_cuda.to_device(o) for o in outs], 0, BOX)
    same = bool(np.array_equal(cpu.xyxy, gpu.xyxy) and np.array_equal(cpu.class_id, gpu.class_id))
    if cpu.masks is not None:
        same &= all(np.array_equal(a, b) for a, b in zip(cpu.masks, gpu.masks))
    if cpu.keypoints is not None:
        same &= bool(np.array_equal(cpu.keypoints, gpu.keypoints))
    if cpu.classification is not None:
        same &= cpu.classification.category == gpu.classification.category
    if cpu.semantic is not None:
        same &= bool(np.array_equal(cpu.semantic.class_map, gpu.semantic.class_map))
    return {"layout": name, "task": layout.task, "detections": len(cpu), "same": same}


def main() -> int:
    if not kernels_cuda.available():
        print(json.dumps({"error": kernels_cuda.unavailable_reason()}))
        return 1
    for name, (outs, hints) in outputs(np.random.default_rng(3)).items():
        print(json.dumps(compare(name, outs, hints)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
