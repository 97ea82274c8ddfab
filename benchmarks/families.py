"""Post-processing of the model families: end-to-end heads beside the classic head, pose.

Raw outputs of one 640×640 input looking at a 1920×1080 frame, decoded by the decoders a
model of that layout gets at load (``decoder_for``), on the CPU kernels:

- segmentation, 20 objects, accurate masks + RLE: the classic YOLOv8-seg head (8400 anchors,
  10 overlapping candidates per object, NMS) beside the end-to-end head (300 final rows: the
  20 objects' best candidates, the rest below the threshold; no NMS);
- pose, 100 people with 17 keypoints: the classic YOLOv8-pose head (NMS) and the end-to-end
  pose head (300 rows).

Prints median ms per frame and the ratio end-to-end / classic, measured side by side.

    python -m benchmarks.families [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import table  # noqa: E402
from pipeline.infer.config import PostprocessOptions  # noqa: E402
from pipeline.infer.kernels import select_kernels  # noqa: E402
from pipeline.infer.layouts import LayoutHints, recognise  # noqa: E402
from pipeline.infer.letterbox import Letterbox  # noqa: E402
from pipeline.infer.tasks import decoder_for  # noqa: E402
from pipeline.vision import rle  # noqa: E402
from pipeline.vision.geometry import box_iou  # noqa: E402
from tests.reference import make_raw_outputs  # noqa: E402

NAME = "families"
TITLE = "Model families: end-to-end heads and pose"
SOURCE_HW, INPUT_HW = (1080, 1920), (640, 640)
ROWS = 300  # an end-to-end head's fixed row count
K = 17
TARGETS = {"e2e_vs_classic_seg": 1.0, "pose_100_ms": 1.0}


def _best_rows(classic: np.ndarray, first: int) -> np.ndarray:
    """The end-to-end rows of the same scene: the candidates a greedy NMS keeps (one per
    object) as (x1, y1, x2, y2, score, class, extra...), then rows below any threshold."""
    pred = classic.T  # (A, 4 + nc + extra), xywh
    scores = pred[:, 4:first].max(1)
    order = np.flatnonzero(scores > 0.4)
    order = order[np.argsort(-scores[order])]
    xyxy = np.concatenate([pred[:, :2] - pred[:, 2:4] / 2, pred[:, :2] + pred[:, 2:4] / 2], 1)
    kept: list[int] = []
    for i in order:
        if not kept or box_iou(xyxy[i:i + 1], xyxy[kept]).max() < 0.5:
            kept.append(int(i))
    rows = np.zeros((ROWS, 6 + pred.shape[1] - first), np.float32)
    n = len(kept)
    rows[:n, :4], rows[:n, 4], rows[:n, 5] = xyxy[kept], scores[kept], pred[kept, 4:first].argmax(1)
    rows[:n, 6:] = pred[kept, first:]
    rows[n:, 4] = 0.001
    return rows


def _pose_outputs(rng: np.random.Generator, people: int) -> np.ndarray:
    """A classic YOLOv8-pose output (4 + 1 + K·3, 8400): ``people`` with 10 candidates each."""
    box, _ = make_raw_outputs(rng, "yolov8", people, nc=1, source_hw=SOURCE_HW, max_size=60.0)
    box = box[:5]  # xywh + the one class score (no mask coefficients)
    kpts = np.empty((K * 3, box.shape[1]), np.float32)
    offsets = rng.uniform(-0.5, 0.5, (K, 2, box.shape[1]))
    for k in range(K):
        kpts[3 * k] = box[0] + offsets[k, 0] * box[2]
        kpts[3 * k + 1] = box[1] + offsets[k, 1] * box[3]
        kpts[3 * k + 2] = rng.uniform(0.2, 0.99, box.shape[1])
    return np.concatenate([box, kpts]).astype(np.float32)


def _time(decoder, outputs: list[np.ndarray], letterbox: Letterbox, repeat: int, with_rle: bool) -> tuple[int, float]:
    batch = [o[np.newaxis] for o in outputs]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        dets = decoder.decode(batch, 0, letterbox)
        if with_rle:
            dets.rle()
        times.append((time.perf_counter() - t) * 1e3)
    return len(dets), statistics.median(times)


def _decoder(shapes, nc: int, hints: LayoutHints, kernels, **options):
    layout = recognise(shapes, nc, None, hints)
    return decoder_for(layout, PostprocessOptions(**options), [str(i) for i in range(nc)], kernels, ())


def measure(repeat: int = 30) -> dict:
    kernels, _ = select_kernels("cpu")
    kernels.warm_up()
    rle.warm_up()
    box = Letterbox.fit(SOURCE_HW, INPUT_HW)
    rng = np.random.default_rng(20)
    out0, protos = make_raw_outputs(rng, "yolov8-seg", 20, source_hw=SOURCE_HW)
    rows_seg = _best_rows(out0, 4 + 3)
    seg = {"mask_decode_mode": "accurate", "iou_threshold": 0.5}
    classic = _decoder([(1, *out0.shape), (1, *protos.shape)], 3, LayoutHints(task="segment"), kernels, **seg)
    e2e = _decoder([(1, *rows_seg.shape), (1, *protos.shape)], 3, LayoutHints(task="segment", end2end=True), kernels, **seg)
    pose_out = _pose_outputs(np.random.default_rng(100), 100)
    rows_pose = _best_rows(pose_out, 5)
    pose_hints = {"task": "pose", "kpt_shape": (K, 3)}
    pose = _decoder([(1, *pose_out.shape)], 1, LayoutHints(**pose_hints), kernels, max_detections=300)
    pose_e2e = _decoder([(1, *rows_pose.shape)], 1, LayoutHints(end2end=True, **pose_hints), kernels, max_detections=300)
    cases = [("segmentation, 20 objects, accurate + RLE", "classic (8400 anchors, NMS)", classic, [out0, protos], True),
             ("segmentation, 20 objects, accurate + RLE", "end-to-end (300 rows)", e2e, [rows_seg, protos], True),
             ("pose, 100 people, K = 17", "classic (8400 anchors, NMS)", pose, [pose_out], False),
             ("pose, 100 people, K = 17", "end-to-end (300 rows)", pose_e2e, [rows_pose], False)]
    for _, _, decoder, outputs, with_rle in cases:  # warm: first calls compile nothing, but fill caches
        _time(decoder, outputs, box, 2, with_rle)
    results = [{"case": c, "head": h, **dict(zip(("kept", "ms"), _time(d, o, box, repeat, r)))} for c, h, d, o, r in cases]
    return {"repeat": repeat, "rows": results}


def render(data: dict) -> str:
    rows = data["rows"]
    body = [[r["case"], r["head"], r["kept"], f"{r['ms']:.3f}"] for r in rows]
    seg_ratio = rows[1]["ms"] / rows[0]["ms"]
    pose_ms = max(rows[2]["ms"], rows[3]["ms"])
    return "\n".join([
        "Raw outputs of one 640×640 input looking at a 1920×1080 frame, decoded by the decoder each layout gets at "
        f"load (CPU kernels). Median ms per frame over {data['repeat']} runs, measured side by side.", "",
        table(["outputs", "head", "kept", "ms / frame"], body), "",
        f"Targets: end-to-end segmentation no slower than the classic head → ratio {seg_ratio:.2f} "
        f"({'met' if seg_ratio <= TARGETS['e2e_vs_classic_seg'] else 'NOT met'}); pose with 100 people ≤ 1 ms → "
        f"{pose_ms:.3f} ms ({'met' if pose_ms <= TARGETS['pose_100_ms'] else 'NOT met'}).",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    data = measure(args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
