"""GPU post-processing against the CPU kernels, on raw outputs of both layouts, every mask
mode: same candidates, boxes, scores and classes; masks equal up to pixels whose logit is
within rounding of 0. Prints one JSON line per case.

Run under the Numba CUDA simulator on a CPU-only machine (tests/test_gpu.py does):
    NUMBA_ENABLE_CUDASIM=1 python tests/cuda_parity.py
and as it is on a GPU machine (the real kernels):
    python tests/cuda_parity.py --full
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.infer.kernels import cuda as kernels_cuda  # noqa: E402
from pipeline.infer.postprocess import postprocess_segmentation  # noqa: E402
from tests.reference import make_raw_outputs  # noqa: E402


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def compare(layout: str, mode: str, objects: int, input_hw, source_hw, anchors: int, seed: int,
            max_size: float = 150.0) -> dict:
    out0, protos = make_raw_outputs(np.random.default_rng(seed), layout, objects, input_hw=input_hw, source_hw=source_hw,
                                    candidates_per_object=4, n_anchors=anchors, max_size=max_size)
    kw = dict(layout=layout, input_hw=input_hw, source_hw=source_hw, confidence=0.4, iou_threshold=0.5,
              mask_decode_mode=mode)
    cpu = postprocess_segmentation(out0, protos, **kw)
    gpu = postprocess_segmentation(kernels_cuda.to_device(out0), kernels_cuda.to_device(protos), device="cuda", **kw)
    ious = [mask_iou(a, b) for a, b in zip(cpu.masks, gpu.masks)]
    return {"layout": layout, "mode": mode, "cpu": len(cpu), "gpu": len(gpu),
            "same_boxes": bool(len(cpu) == len(gpu) and np.array_equal(cpu.xyxy, gpu.xyxy)),
            "same_scores": bool(len(cpu) == len(gpu) and np.array_equal(cpu.confidence, gpu.confidence)),
            "same_classes": bool(len(cpu) == len(gpu) and np.array_equal(cpu.class_id, gpu.class_id)),
            "same_shapes": all(a.shape == b.shape for a, b in zip(cpu.masks, gpu.masks)),
            "min_mask_iou": min(ious, default=1.0), "pixels": int(sum(m.size for m in cpu.masks))}


def model_case() -> dict:
    """The Model's GPU path end to end (outputs put on the device, sliced per image, the
    kernels run in the stage's device context) on the bundled model, a batch of two."""
    from pipeline.infer.config import PostprocessOptions
    from pipeline.infer.model import Model
    from pipeline.zoo import default_model_path
    from sources.scene import SyntheticScene

    gpu = Model.load(default_model_path(), intra_op_threads=1, postprocess=PostprocessOptions(device="cuda"), warm_up=False)
    cpu = Model.load(default_model_path(), intra_op_threads=1, warm_up=False)
    image, _ = SyntheticScene(5, 256, 144).step()  # small frame: masks are decoded in source pixels
    images = [image, np.ascontiguousarray(image[:, ::-1])]
    a, b = gpu.infer(images), cpu.infer(images)
    return {"layout": "bundled model", "mode": "accurate", "postprocess_device": gpu.postprocess_device,
            "cpu": sum(map(len, b)), "gpu": sum(map(len, a)),
            "same_boxes": all(np.array_equal(x.xyxy, y.xyxy) for x, y in zip(a, b)),
            "same_scores": all(np.array_equal(x.confidence, y.confidence) for x, y in zip(a, b)),
            "same_classes": all(np.array_equal(x.class_id, y.class_id) for x, y in zip(a, b)),
            "same_shapes": all(m.shape == n.shape for x, y in zip(a, b) for m, n in zip(x.masks, y.masks)),
            "min_mask_iou": min((mask_iou(m, n) for x, y in zip(a, b) for m, n in zip(x.masks, y.masks)), default=1.0),
            "pixels": int(sum(m.size for x in b for m in x.masks))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="640 input, 1080p source, 8400 anchors, 20 objects (real GPU)")
    args = parser.parse_args(argv)
    if not kernels_cuda.available():
        print(json.dumps({"error": kernels_cuda.unavailable_reason()}))
        return 1
    if args.full:
        sizes = dict(objects=20, input_hw=(640, 640), source_hw=(1080, 1920), anchors=8400)
    else:  # small enough for the simulator (Python runs every GPU thread)
        sizes = dict(objects=3, input_hw=(96, 96), source_hw=(60, 100), anchors=120, max_size=30.0)
    for i, layout in enumerate(("yolov5-seg", "yolov8-seg")):
        for mode in ("accurate", "tradeoff", "fast"):
            print(json.dumps(compare(layout, mode, seed=i, **sizes)), flush=True)
    print(json.dumps(model_case()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
