"""Accuracy of a run against exact ground truth: COCO mAP (pycocotools), MOT metrics,
keypoint OKS mAP and classification accuracy.

``vidpipe eval --results R.jsonl --gt clip.gt.json`` prints JSON with what the results
carry and the ground truth can score:

* detections (boxes): ``box_map50``, ``box_map50_95``, ``mask_map50``, ``mask_map50_95``
  (None when the results carry no masks) and, with track ids, ``idf1``, ``mota``, ``hota``
  (with ``deta`` and ``assa``), ``id_switches``, ``gt_tracks`` (None without);
* keypoints (pose models; the ground truth's categories name keypoints):
  ``keypoint_map50_95``, ``keypoint_map50``, ``keypoint_map75``, ``keypoint_names``,
  ``keypoint_sigmas`` (:mod:`pipeline.app.evaluate_keypoints`);
* classifications: ``top1_accuracy``, ``top5_accuracy``, ``labelled_frames``,
  ``unanswered_frames``, ``frames_without_object``, a frame's label being the category
  of its largest visible object (:mod:`pipeline.app.evaluate_classes`).

``note`` says what was not scored and why. Results with nothing the ground truth can
score (classifications against a ground truth without objects, semantic segments) are an
error naming what each side has. Results are the JSON Lines a ``jsonl`` sink writes (any
output format), read and checked by :func:`pipeline.wire.parse.read_records`; ground
truth is the COCO-style file written by ``python -m sources.synthetic`` (frames as
images, ``track_id`` per annotation).

Tracking metrics (CLEAR MOT, IDF1, HOTA) are computed as TrackEval computes them, on box
IoU: :mod:`pipeline.app.evaluate_tracks`.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from pipeline.app.evaluate_classes import classification_accuracy
from pipeline.app.evaluate_keypoints import gt_has_keypoints, keypoint_map, keypoint_sigmas
from pipeline.app.evaluate_tracks import mot_metrics
from pipeline.core.errors import VidpipeError
from pipeline.vision import rle
from pipeline.wire.parse import Bitmask, MaskPayload, ResultRecord, read_records

__all__ = ["evaluate", "frames_of", "load_gt", "mot_metrics", "read_results"]


def read_results(path: str | Path) -> list[dict]:
    """The records of a results JSONL file as JSON objects, each checked by the wire
    layer; a bad line is an error naming the file and line."""
    return [record.raw for record in read_records(path)]


def _segmentation(mask: MaskPayload | None, record: ResultRecord) -> dict | None:
    """COCO compressed RLE of a detection's mask, when it has a raster one."""
    if isinstance(mask, Bitmask):
        if record.width is None or record.height is None:
            return None
        x0, y0 = mask.box[:2]
        return rle.encode_crop(mask.mask, x0, y0, record.height, record.width)
    if isinstance(mask, dict):
        if isinstance(mask["counts"], list):  # uncompressed: pycocotools scores compressed RLE
            return rle.encode(rle.decode(dict(mask)))
        return dict(mask)
    return None


def _coco_results(gt: dict, records: list[ResultRecord]) -> tuple[list[dict], list[dict]]:
    """pycocotools results (bbox, segm) of the records' detections of GT frames and classes."""
    frame_to_image = {img.get("frame_index", img["id"]): img["id"] for img in gt["images"]}
    cat_by_name = {c["name"]: c["id"] for c in gt["categories"]}
    segm, bbox = [], []
    for rec in records:
        image_id = frame_to_image.get(rec.frame)
        if image_id is None:
            continue
        dets = rec.detections
        for i, name in enumerate(dets.category):
            cat = cat_by_name.get(name)
            if cat is None:
                continue
            x0, y0, x1, y1 = dets.xyxy[i].tolist()
            score = float(dets.confidence[i])
            bbox.append({"image_id": image_id, "category_id": cat, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score})
            seg = _segmentation(dets.masks[i], rec)
            if seg is not None:
                segm.append({"image_id": image_id, "category_id": cat, "segmentation": seg, "score": score})
    return bbox, segm


def coco_map(gt: dict, records: list[ResultRecord]) -> dict[str, float | None]:
    """Box and mask mAP@0.5 and mAP@0.5:0.95 (pycocotools) of the records against ``gt``;
    the mask mAPs are None when no detection carries a mask."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    bbox, segm = _coco_results(gt, records)
    out: dict[str, float | None] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        for kind, dets in (("bbox", bbox), ("segm", segm)):
            prefix = "box" if kind == "bbox" else "mask"
            if kind == "segm" and not any(m is not None for r in records for m in r.detections.masks):
                out[f"{prefix}_map50"] = out[f"{prefix}_map50_95"] = None  # not a segmentation model's results
                continue
            if not dets:
                out[f"{prefix}_map50"] = 0.0
                out[f"{prefix}_map50_95"] = 0.0
                continue
            coco_dt = coco_gt.loadRes(dets)
            ev = COCOeval(coco_gt, coco_dt, kind)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[f"{prefix}_map50_95"] = round(float(ev.stats[0]), 4)
            out[f"{prefix}_map50"] = round(float(ev.stats[1]), 4)
    return out


def frames_of(gt: dict, records: list[ResultRecord]) -> tuple[list, list]:
    """Per frame (in GT order): GT (ids, boxes) and predicted (ids, boxes)."""
    image_frame = {img["id"]: img.get("frame_index", img["id"]) for img in gt["images"]}
    gt_by_frame: dict[int, list] = defaultdict(list)
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        gt_by_frame[image_frame[a["image_id"]]].append((a["track_id"], [x, y, x + w, y + h]))
    pred_by_frame: dict[int, list] = {}
    for rec in records:
        dets = rec.detections
        pred_by_frame[rec.frame] = [(int(t), box) for t, box in zip(dets.tracker_id.tolist(), dets.xyxy.tolist()) if t >= 0]
    frames = sorted(image_frame.values())
    g = [gt_by_frame.get(f, []) for f in frames]
    p = [pred_by_frame.get(f, []) for f in frames]
    return g, p


def load_gt(gt_path: str | Path) -> dict:
    gt_p = Path(gt_path)
    if not gt_p.is_file():
        raise VidpipeError(f"ground-truth file not found: {gt_p}")
    try:
        gt = json.loads(gt_p.read_text())
        gt["images"], gt["annotations"], gt["categories"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise VidpipeError(f"{gt_p}: not a COCO-style ground-truth file ({exc})") from None
    return gt


def results_carry(records: list[ResultRecord]) -> list[str]:
    """What the records answer: ``detections`` (any record of a detection, segmentation or
    pose model, even with none found), ``masks``, ``track ids``, ``keypoints``,
    ``classifications``, ``semantic segments``."""
    det = [r for r in records if r.classification is None and r.semantic is None]
    has = {"detections": bool(det),
           "masks": any(m is not None for r in det for m in r.detections.masks),
           "track ids": any((r.detections.tracker_id >= 0).any() for r in det),
           "keypoints": any(r.detections.keypoints is not None for r in det),
           "classifications": any(r.classification is not None for r in records),
           "semantic segments": any(r.semantic is not None for r in records)}
    return [k for k, v in has.items() if v]


def gt_scores(gt: dict) -> list[str]:
    """What the ground truth can score: ``objects`` (boxes, masks, tracks and frame
    labels) when it has annotations, ``keypoints`` when its categories name them."""
    return [k for k, v in {"objects": bool(gt["annotations"]), "keypoints": gt_has_keypoints(gt)}.items() if v]


def evaluate(results_path: str | Path, gt_path: str | Path, kpt_sigma: float | None = None) -> dict[str, Any]:
    """Accuracy of a results JSONL (one stream) against a COCO-style ground-truth file:
    what the results carry and the ground truth can score (see the module docstring);
    ``kpt_sigma``: one OKS sigma for every keypoint instead of the default."""
    if kpt_sigma is not None:
        keypoint_sigmas((), kpt_sigma)  # a bad sigma is an error even when nothing uses it
    gt = load_gt(gt_path)
    records = read_records(results_path)
    streams = {r.stream for r in records}
    if len(streams) > 1:
        raise VidpipeError(f"{results_path}: results of several streams {sorted(streams)}; evaluate one stream per file")
    carry, scores = results_carry(records), gt_scores(gt)
    objects, keypoints = "objects" in scores, "keypoints" in scores
    if not ((objects and ("detections" in carry or "classifications" in carry)) or (keypoints and "keypoints" in carry)):
        raise VidpipeError(f"{results_path}: nothing to score against {gt_path}: the results carry "
                           f"{', '.join(carry) or 'no records'}; the ground truth has "
                           f"{' and '.join(scores) + ' to score' if scores else 'no annotations'}")
    out: dict[str, Any] = {"frames": len(records), "gt_frames": len(gt["images"])}
    notes = []
    if "detections" in carry:
        det = [r for r in records if r.classification is None and r.semantic is None]
        out.update(coco_map(gt, det))
        if "masks" not in carry:
            notes.append("results carry no masks")
        if "track ids" in carry:
            out.update(mot_metrics(*frames_of(gt, det)))
        else:
            out.update({"mota": None, "idf1": None, "hota": None, "id_switches": None})
            notes.append("results carry no track ids")
    if "keypoints" in carry:
        if keypoints:
            out.update(keypoint_map(gt, records, kpt_sigma))
        else:
            out.update({"keypoint_map50_95": None, "keypoint_map50": None, "keypoint_map75": None})
            notes.append("the ground truth names no keypoints")
    if "classifications" in carry:
        out.update(classification_accuracy(gt, records))
    if "semantic segments" in carry:
        notes.append("semantic segments are not scored")
    if notes:
        out["note"] = "; ".join(notes)
    return out
