"""Keypoint OKS mAP of a pose run against the synthetic world's ground truth (dev tool, no torch).

    python -m training.eval_pose --results out/pose.jsonl --gt out/heldout.gt.json

COCO's keypoint evaluation (pycocotools, ``iouType="keypoints"``) with the agreed sigma
0.05 for each of the five keypoints (sources/keypoints.py); prints JSON with
``oks_map50``, ``oks_map50_95``, ``box_map50`` and ``box_map50_95``. The model card's
figures come from here until ``vidpipe eval`` scores keypoints itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from pipeline.wire.parse import ResultRecord, read_records

log = logging.getLogger("vidpipe.train")

OKS_SIGMA = 0.05


def keypoint_results(gt: dict, records: list[ResultRecord]) -> list[dict]:
    """pycocotools keypoint results of the records' detections on GT frames and classes."""
    frame_to_image = {img.get("frame_index", img["id"]): img["id"] for img in gt["images"]}
    cat_by_name = {c["name"]: c["id"] for c in gt["categories"]}
    out = []
    for rec in records:
        image_id = frame_to_image.get(rec.frame)
        dets = rec.detections
        if image_id is None or dets.keypoints is None:
            continue
        for i, name in enumerate(dets.category):
            if name in cat_by_name:
                out.append({"image_id": image_id, "category_id": cat_by_name[name], "score": float(dets.confidence[i]),
                            "keypoints": [round(float(v), 3) for v in dets.keypoints[i].reshape(-1)]})
    return out


def oks_map(gt: dict, results: list[dict], sigma: float = OKS_SIGMA) -> dict[str, float]:
    """OKS mAP@0.5 and mAP@0.5:0.95 (all areas, 20 detections per image, as COCO)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {"oks_map50": 0.0, "oks_map50_95": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "keypoints")
        ev.params.kpt_oks_sigmas = np.full(len(gt["categories"][0]["keypoints"]), sigma)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"oks_map50": round(float(ev.stats[1]), 4), "oks_map50_95": round(float(ev.stats[0]), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="JSON Lines of a pose run (jsonl sink)")
    parser.add_argument("--gt", type=Path, required=True, help="ground truth of python -m sources.synthetic --gt")
    parser.add_argument("--sigma", type=float, default=OKS_SIGMA)
    args = parser.parse_args(argv)
    from pipeline.app.evaluate import coco_map

    gt = json.loads(args.gt.read_text())
    records = list(read_records(args.results))
    figures = oks_map(gt, keypoint_results(gt, records), args.sigma)
    box = coco_map(gt, records)
    figures.update({"box_map50": box["box_map50"], "box_map50_95": box["box_map50_95"]})
    print(json.dumps(figures))  # noqa: T201 - a command's answer
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
