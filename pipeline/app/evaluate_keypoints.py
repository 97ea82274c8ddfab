"""Keypoint accuracy of a run: COCO OKS mAP with pycocotools (``iouType="keypoints"``).

Ground truth is COCO keypoint style: a category names its keypoints (``"keypoints":
["centre", "top", ...]``) and each of its annotations carries ``keypoints`` ``[x1, y1, v1,
..., xK, yK, vK]`` (``v``: 2 visible, 1 labelled but hidden, 0 not labelled) and
``num_keypoints``. An annotation with no labelled keypoint is ignored (COCO's rule), as
is one without ``keypoints``.

Detections are those of the results whose records carry keypoints, matched to the ground
truth's categories by name. Each detection's keypoint score is its detection score, as
Ultralytics' COCO export writes them; the keypoints' own confidences are not used
(pycocotools ignores them). Keypoints are put in the ground truth's order by name when
both sides name them (the results' ``keypoint_names``, the category's ``keypoints``),
else taken by position; a different count is an error.

OKS uses one sigma per keypoint: 0.05 each by default, COCO's own sigmas when the ground
truth names COCO's 17 person keypoints, or the ``sigma`` given (``vidpipe eval
--kpt-sigma``). As in COCO's keypoint evaluation, at most 20 detections per frame and
class are scored (the highest scores).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import VidpipeError
from pipeline.wire.parse import ResultRecord

#: COCO's 17 person keypoints and their OKS sigmas (pycocotools' defaults).
COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
                  "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10
DEFAULT_SIGMA = 0.05


def gt_keypoint_names(gt: dict) -> tuple[str, ...]:
    """The keypoint names of the ground truth's categories (() when none names any); every
    category that names keypoints must name the same ones."""
    lists = {tuple(c["keypoints"]) for c in gt["categories"] if c.get("keypoints")}
    if len(lists) > 1:
        raise VidpipeError(f"ground truth: categories name different keypoints {sorted(map(list, lists))}; "
                           "evaluate one keypoint layout at a time")
    return lists.pop() if lists else ()


def gt_has_keypoints(gt: dict) -> bool:
    """Whether the ground truth names keypoints and labels them on some annotation."""
    return bool(gt_keypoint_names(gt)) and any(a.get("keypoints") for a in gt["annotations"])


def keypoint_sigmas(names: Sequence[str], sigma: float | None = None) -> npt.NDArray[np.float64]:
    """The OKS sigma of each keypoint: ``sigma`` when given, COCO's for COCO's 17 person
    keypoints, else :data:`DEFAULT_SIGMA`."""
    if sigma is not None:
        if not 0 < sigma < float("inf"):
            raise VidpipeError(f"--kpt-sigma: expected a positive number, got {sigma}")
        return np.full(len(names), float(sigma))
    if tuple(names) == COCO_KEYPOINTS:
        return COCO_SIGMAS.copy()
    return np.full(len(names), DEFAULT_SIGMA)


def keypoint_order(result_names: Sequence[str], k: int, gt_names: Sequence[str], where: str) -> npt.NDArray[np.intp]:
    """Indices that put a result's ``k`` keypoints in the ground truth's order: by name
    when both sides name them, else by position; an error when they do not correspond."""
    if result_names and gt_names:
        if len(set(result_names)) != len(result_names) or set(result_names) != set(gt_names):
            raise VidpipeError(f"{where}: the results name keypoints {list(result_names)}, "
                               f"the ground truth {list(gt_names)}")
        return np.array([list(result_names).index(n) for n in gt_names], np.intp)
    if k != len(gt_names):
        raise VidpipeError(f"{where}: the results have {k} keypoints per detection, the ground truth "
                           f"{len(gt_names)} ({', '.join(gt_names)})")
    return np.arange(k, dtype=np.intp)


def _keypoint_gt(gt: dict, names: Sequence[str]) -> dict:
    """The ground truth as pycocotools needs it for keypoints: the categories that name
    keypoints and their annotations that carry them, with ``num_keypoints`` and ``area``."""
    cats = [c for c in gt["categories"] if c.get("keypoints")]
    cat_ids = {c["id"] for c in cats}
    anns = []
    for a in gt["annotations"]:
        kp = a.get("keypoints")
        if a["category_id"] not in cat_ids or not kp:
            continue
        if len(kp) != 3 * len(names):
            raise VidpipeError(f"ground truth annotation {a.get('id')}: {len(kp)} keypoint values, expected "
                               f"3 × {len(names)} ({', '.join(names)})")
        x, y, w, h = a["bbox"]
        anns.append({**a, "num_keypoints": a.get("num_keypoints", sum(1 for v in kp[2::3] if v > 0)),
                     "area": a.get("area", w * h), "iscrowd": a.get("iscrowd", 0)})
    return {"images": gt["images"], "annotations": anns, "categories": cats}


def _keypoint_results(gt_kp: dict, records: Sequence[ResultRecord], names: Sequence[str]) -> list[dict]:
    """pycocotools keypoint results of the records' detections of GT frames and classes."""
    frame_to_image = {img.get("frame_index", img["id"]): img["id"] for img in gt_kp["images"]}
    cat_by_name = {c["name"]: c["id"] for c in gt_kp["categories"]}
    orders: dict[tuple[tuple[str, ...], int], npt.NDArray[np.intp]] = {}
    out = []
    for rec in records:
        kp = rec.detections.keypoints
        if kp is None:
            continue
        key = (rec.keypoint_names, kp.shape[1])
        if key not in orders:
            orders[key] = keypoint_order(rec.keypoint_names, kp.shape[1], names, f"results frame {rec.frame}")
        image_id = frame_to_image.get(rec.frame)
        if image_id is None:
            continue
        kp = kp[:, orders[key]]
        for i, category in enumerate(rec.detections.category):
            cat = cat_by_name.get(category)
            if cat is not None:
                out.append({"image_id": image_id, "category_id": cat, "keypoints": kp[i].ravel().tolist(),
                            "score": float(rec.detections.confidence[i])})
    return out


def _keypoint_eval(gt: dict, records: Sequence[ResultRecord], sigma: float | None) -> tuple[Any, tuple[str, ...], npt.NDArray[np.float64]]:
    """(pycocotools COCOeval after ``evaluate()``, or None without detections to score;
    the ground truth's keypoint names; the sigmas used)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    names = gt_keypoint_names(gt)
    sigmas = keypoint_sigmas(names, sigma)
    gt_kp = _keypoint_gt(gt, names)
    dets = _keypoint_results(gt_kp, records, names)
    if not dets:
        return None, names, sigmas
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = gt_kp
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), "keypoints")
        ev.params.kpt_oks_sigmas = sigmas
        ev.evaluate()
    return ev, names, sigmas


def keypoint_map(gt: dict, records: Sequence[ResultRecord], sigma: float | None = None) -> dict[str, Any]:
    """OKS mAP@0.5:0.95, @0.5 and @0.75 of the records' keypoints against ``gt``, with the
    keypoint names (the ground truth's order) and the sigmas used. A detection's keypoint
    score is its detection score (as Ultralytics' COCO export writes it)."""
    ev, names, sigmas = _keypoint_eval(gt, records, sigma)
    out: dict[str, Any] = {"keypoint_map50_95": 0.0, "keypoint_map50": 0.0, "keypoint_map75": 0.0}
    if ev is not None:
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
            ev.summarize()
        # stats: AP@[.5:.95], AP@.5, AP@.75; -1 (None here) when no labelled keypoint was scored
        out = {k: round(float(v), 4) if v >= 0 else None for k, v in zip(out, ev.stats[:3])}
    out["keypoint_names"] = list(names)
    out["keypoint_sigmas"] = [round(float(s), 4) for s in sigmas]
    return out


def keypoint_oks(gt: dict, records: Sequence[ResultRecord], sigma: float | None = None) -> dict[tuple[int, int], npt.NDArray[np.float64]]:
    """The OKS pycocotools computed, per (image id, category id): a (detections, ground
    truth) matrix, detections by descending score. For checking and inspection."""
    ev, _, _ = _keypoint_eval(gt, records, sigma)
    if ev is None:
        return {}
    return {key: np.asarray(v, np.float64) for key, v in ev.ious.items() if len(v)}
