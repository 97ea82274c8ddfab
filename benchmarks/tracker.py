"""Tracker cost per frame: ByteTrack with 20 and 100 moving objects (no masks, and with
mask-IoU matching), median over a clip of synthetic detections with jitter, misses and
false positives.

    python benchmarks/tracker.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detections import Detections  # noqa: E402
from pipeline.tracker import ByteTrack  # noqa: E402

HW = (1080, 1920)


def detections_stream(n: int, frames: int, seed: int = 0, masks: bool = False):
    rng = np.random.default_rng(seed)
    pos = rng.uniform([0, 0], [HW[1] - 80, HW[0] - 80], (n, 2))
    vel = rng.normal(0, 4, (n, 2))
    size = rng.uniform(30, 80, (n, 2))
    for _ in range(frames):
        pos = np.clip(pos + vel, 0, [HW[1] - 80, HW[0] - 80])
        seen = rng.random(n) > 0.05  # 5 % missed per frame
        xyxy = np.concatenate([pos, pos + size], 1)[seen] + rng.normal(0, 1.5, (int(seen.sum()), 4))
        fp = rng.uniform([0, 0], [HW[1] - 50, HW[0] - 50], (max(1, n // 20), 2))
        xyxy = np.concatenate([xyxy, np.concatenate([fp, fp + 40], 1)]).astype(np.float32)
        conf = np.concatenate([rng.uniform(0.5, 0.95, int(seen.sum())), rng.uniform(0.1, 0.5, len(fp))]).astype(np.float32)
        crops = None
        if masks:
            from pipeline.detections import mask_boxes

            crops = [np.ones((b[3] - b[1], b[2] - b[0]), bool) for b in mask_boxes(xyxy, HW)]
        yield Detections(xyxy, conf, np.zeros(len(xyxy), np.int64), HW, crops)


def bench(n: int, mask_iou: bool, frames: int = 300) -> tuple[float, float]:
    tracker = ByteTrack(fps=30, mask_iou=mask_iou)
    stream = list(detections_stream(n, frames, masks=mask_iou))
    times = []
    for dets in stream:
        t = time.perf_counter()
        tracker.update(dets)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times[10:]), float(np.percentile(times[10:], 95))


def main() -> list[dict]:
    rows = []
    print(f"{'objects':>7} {'matching':>9} {'median ms':>10} {'p95 ms':>8}")
    for n in (20, 100):
        for mask_iou in (False, True):
            med, p95 = bench(n, mask_iou)
            rows.append({"objects": n, "matching": "mask IoU" if mask_iou else "box IoU", "median_ms": med, "p95_ms": p95})
            print(f"{n:>7} {rows[-1]['matching']:>9} {med:>10.3f} {p95:>8.3f}")
    return rows


if __name__ == "__main__":
    main()
