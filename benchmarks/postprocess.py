"""Post-processing hot path: vidpipe's Numba kernels vs the plain NumPy reference.

Raw outputs shaped like a YOLOv5-seg 640 model looking at a 1920×1080 frame, with 5, 20
and 100 objects (10 overlapping candidates each above threshold), every mask mode,
class-aware and class-agnostic NMS. Prints ms per frame for NMS, mask decoding and RLE
encoding, for both implementations side by side, and the speed-up.

    python benchmarks/postprocess.py [--repeat 20]

Also checks that the first frame after a model load is not slower than 2× the median:
a fresh process loads the model (which warms the kernels up) and times its first frames.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import table  # noqa: E402
from pipeline.infer.kernels import cpu as kernels  # noqa: E402
from pipeline.infer.postprocess import PostprocessTimings, postprocess_segmentation  # noqa: E402
from pipeline.vision import rle  # noqa: E402
from tests.reference import make_raw_outputs, reference_postprocess  # noqa: E402

SOURCE_HW, INPUT_HW = (1080, 1920), (640, 640)
NAME = "postprocess"
TITLE = "Post-processing hot path"
# The suite's rows: every mode at 20 objects, the extremes at 5 and 100.
# Issue 19 halved the 20-object figures of 2026-11-22 (2.03, 0.88, 0.83 ms): the mask kernel
# writes COCO run lengths in the same pass, a run of rows at a time.
TARGETS_MS = {(20, "accurate"): 1.0, (20, "tradeoff"): 0.45, (20, "fast"): 0.45, (100, "accurate"): 20.0}


def _time_vidpipe(out0, protos, mode, agnostic, repeat):
    nms_ms, mask_ms, rle_ms = [], [], []
    timings = PostprocessTimings()
    for _ in range(3):  # steady state: the first calls of a mode page in its buffers
        postprocess_segmentation(out0, protos, "yolov5-seg", INPUT_HW, SOURCE_HW, confidence=0.4, iou_threshold=0.5,
                                 class_agnostic_nms=agnostic, mask_decode_mode=mode).rle()
    for _ in range(repeat):
        dets = postprocess_segmentation(out0, protos, "yolov5-seg", INPUT_HW, SOURCE_HW, confidence=0.4, iou_threshold=0.5,
                                        class_agnostic_nms=agnostic, mask_decode_mode=mode, timings=timings)
        t = time.perf_counter()
        dets.rle()
        rle_ms.append((time.perf_counter() - t) * 1e3)
        nms_ms.append(timings.nms)
        mask_ms.append(timings.masks)
    return len(dets), statistics.median(nms_ms), statistics.median(mask_ms), statistics.median(rle_ms)


def _time_reference(out0, protos, mode, agnostic, repeat):
    from pycocotools import mask as coco_mask

    from pipeline.vision.geometry import mask_boxes

    nms_ms, mask_ms, rle_ms = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        reference_postprocess(out0, None, "yolov5", INPUT_HW, SOURCE_HW, confidence=0.4, iou_threshold=0.5,
                                    class_agnostic_nms=agnostic, max_detections=300)
        t1 = time.perf_counter()
        full = reference_postprocess(out0, protos, "yolov5-seg", INPUT_HW, SOURCE_HW, confidence=0.4, iou_threshold=0.5,
                                     class_agnostic_nms=agnostic, mask_decode_mode=mode)
        t2 = time.perf_counter()
        boxes = mask_boxes(full["xyxy"], SOURCE_HW)
        for m, b in zip(full["masks"], boxes):
            frame = np.zeros(SOURCE_HW, np.uint8)
            frame[b[1]:b[3], b[0]:b[2]] = m
            coco_mask.encode(np.asfortranarray(frame))
        t3 = time.perf_counter()
        nms_ms.append((t1 - t0) * 1e3)
        mask_ms.append((t2 - t1) * 1e3 - (t1 - t0) * 1e3)  # the full run minus its NMS part
        rle_ms.append((t3 - t2) * 1e3)
    return statistics.median(nms_ms), statistics.median(mask_ms), statistics.median(rle_ms)


def first_frame_check(processes: int = 3) -> dict:
    """In fresh processes: model load (with warm-up), then the first 21 post-processings;
    the process with the median first-frame ratio (one process alone is at the VM's mercy)."""
    runs = sorted((_first_frame_once() for _ in range(processes)), key=lambda r: r["first_ms"] / r["median_ms"])
    return runs[len(runs) // 2]


def _first_frame_once() -> dict:
    code = r"""
import json, time, numpy as np
from pipeline.infer.model import Model
from pipeline.zoo import default_model_path
from pipeline.infer.postprocess import postprocess_segmentation
from tests.reference import make_raw_outputs
t = time.perf_counter(); model = Model.load(default_model_path(), intra_op_threads=2); load = time.perf_counter() - t
out0, protos = make_raw_outputs(np.random.default_rng(0), "yolov5-seg", 20)
times = []
for _ in range(21):
    t = time.perf_counter()
    d = postprocess_segmentation(out0, protos, "yolov5-seg", (640, 640), (1080, 1920), iou_threshold=0.5)
    d.rle()
    times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"load_s": load, "first_ms": times[0], "median_ms": sorted(times[1:])[10]}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(objects: tuple[int, ...] = (5, 20, 100), repeat: int = 15) -> dict:
    kernels.warm_up()
    rle.warm_up()
    rows = []
    for n in objects:
        out0, protos = make_raw_outputs(np.random.default_rng(n), "yolov5-seg", n, source_hw=SOURCE_HW)
        for mode in ("accurate", "tradeoff", "fast"):
            for agnostic in (False, True):
                kept, v_nms, v_mask, v_rle = _time_vidpipe(out0, protos, mode, agnostic, repeat)
                r_nms, r_mask, r_rle = _time_reference(out0, protos, mode, agnostic, max(3, repeat // 5))
                v_total, r_total = v_nms + v_mask + v_rle, r_nms + r_mask + r_rle
                rows.append({"objects": n, "mode": mode, "nms": "agnostic" if agnostic else "per-class", "kept": kept,
                             "vidpipe_ms": {"nms": v_nms, "masks": v_mask, "rle": v_rle, "total": v_total},
                             "numpy_ms": {"nms": r_nms, "masks": r_mask, "rle": r_rle, "total": r_total},
                             "speedup": r_total / v_total})
    return {"repeat": repeat, "rows": rows, "first_frame": first_frame_check()}


def render(data: dict) -> str:
    body = []
    for r in data["rows"]:
        v, ref = r["vidpipe_ms"], r["numpy_ms"]
        mode = "tradeoff 0.5" if r["mode"] == "tradeoff" else r["mode"]
        body.append([r["objects"], mode, r["nms"], f"{v['nms']:.2f}", f"{v['masks']:.2f}", f"{v['rle']:.2f}",
                     f"**{v['total']:.2f}**", f"{ref['total']:.1f}", f"{r['speedup']:.0f}×"])
    targets = []
    for (n, mode), limit in TARGETS_MS.items():
        row = next((r for r in data["rows"] if r["objects"] == n and r["mode"] == mode and r["nms"] == "per-class"), None)
        if row is not None:
            total = row["vidpipe_ms"]["total"]
            targets.append(f"{mode} {n} objects ≤ {limit:g} ms → {total:.2f} ({'met' if total <= limit else 'NOT met'})")
    ff = data["first_frame"]
    return "\n".join([
        "Raw outputs shaped like a YOLOv5-seg 640 model looking at a 1920×1080 frame: 8400 anchors, N objects with "
        "10 overlapping candidates each above the threshold, object sizes log-uniform 8–150 input px (24–450 px on "
        f"the frame). Median ms per frame over {data['repeat']} runs; \"numpy\" is the plain NumPy reference of the "
        "same semantics (`tests/reference.py`) with pycocotools RLE. The mask kernel writes each mask's run lengths in "
        "the same pass as the mask (\"masks\"); \"rle\" is their COCO string encoding. Before it did (2026-11-22, on a "
        "machine about 35 % faster than today's), the 20-object totals were accurate 2.03, tradeoff 0.88 and fast "
        "0.83 ms, of which RLE from the masks 0.69, 0.39 and 0.38 ms.", "",
        table(["objects", "mode", "NMS", "vidpipe: nms", "masks", "rle", "**total**", "numpy total", "speed-up"], body), "",
        ("Targets (total with RLE, per-class NMS): " + "; ".join(targets) + ".") if targets else "(No target rows in this run.)",
        "",
        f"First frame after a model load (median of 3 fresh processes; loading compiles or loads the cached kernels and warms them "
        f"up): {ff['first_ms']:.2f} ms vs a median of {ff['median_ms']:.2f} ms for the next 20 (ratio "
        f"{ff['first_ms'] / ff['median_ms']:.2f}; target < 2). Model load with warm-up: {ff['load_s']:.2f} s.",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--objects", type=int, nargs="*", default=[5, 20, 100])
    args = parser.parse_args(argv)
    data = measure(tuple(args.objects), args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
