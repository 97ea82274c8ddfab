"""Multi-object tracking metrics: CLEAR MOT (MOTA, ID switches), IDF1 and HOTA, computed
as TrackEval (Luiten et al.) computes them, on box IoU. A test checks every figure against
TrackEval itself on the same ground truth and results.

* CLEAR MOT: per frame, a ground-truth object and a predicted one match at IoU ≥ 0.5; the
  assignment (Hungarian) first keeps the pairs matched in the previous frame, then
  maximises IoU. An identity switch is a ground-truth track matched to another predicted
  id than the one it was last matched to. MOTA = 1 - (FN + FP + IDSW) / GT.
* IDF1 (Ristani et al. 2016): whole trajectories matched one to one, maximising the frames
  in which they overlap at IoU ≥ 0.5.
* HOTA (Luiten et al. 2021): for each IoU threshold α in 0.05, 0.10, ..., 0.95, detection
  accuracy DetA = TP / (TP + FN + FP) and association accuracy AssA (per true positive,
  the Jaccard index of the two trajectories it links) with frames matched by the
  Hungarian method on IoU weighed by the trajectories' global alignment;
  HOTA(α) = √(DetA · AssA); ``hota``, ``deta``, ``assa`` are the means over α.

Frames are aligned lists of ``(track id, [x0, y0, x1, y1])`` per frame.

Example:
    >>> gt = [[(1, [0, 0, 10, 10])]] * 3
    >>> m = mot_metrics(gt, [[(5, [0, 0, 10, 10])]] * 3)
    >>> m["mota"], m["idf1"], m["hota"], m["id_switches"]
    (1.0, 1.0, 1.0, 0)
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.vision.geometry import box_iou

IOU_MATCH = 0.5
#: HOTA's localisation thresholds (TrackEval's ``np.arange(0.05, 0.99, 0.05)``).
HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo("float").eps


def _split(items: list) -> tuple[np.ndarray, np.ndarray]:
    """(ids, (N, 4) boxes) of a frame's (id, xyxy) pairs."""
    ids = np.array([i for i, _ in items], np.int64)
    boxes = np.array([b for _, b in items], np.float64).reshape(-1, 4)
    return ids, boxes


def _clear_match(iou: np.ndarray, g_ids: np.ndarray, p_ids: np.ndarray, previous: dict[int, int]) -> list[tuple[int, int]]:
    """(GT index, predicted index) pairs of one frame: pairs at IoU ≥ 0.5, preferring
    those matched in the previous frame (``previous``: GT id → predicted id), then IoU."""
    if not iou.size:
        return []
    prev = np.array([previous.get(int(g), -(2**62)) for g in g_ids], np.int64)
    score = 1000.0 * (p_ids[None, :] == prev[:, None]) + iou
    score[iou < IOU_MATCH - _EPS] = 0
    rows, cols = linear_sum_assignment(-score)
    ok = score[rows, cols] > _EPS
    return list(zip(rows[ok].tolist(), cols[ok].tolist()))


def _idtp(pair_counts: dict[tuple[int, int], int], gt_ids: list[int], pred_ids: list[int]) -> int:
    """IDF1's true positives: one-to-one matching of trajectories maximising co-occurring matches."""
    if not gt_ids or not pred_ids:
        return 0
    gi_of = {g: i for i, g in enumerate(gt_ids)}
    pi_of = {p: i for i, p in enumerate(pred_ids)}
    m = np.zeros((len(gt_ids), len(pred_ids)))
    for (g, p), n in pair_counts.items():
        m[gi_of[g], pi_of[p]] = n
    rows, cols = linear_sum_assignment(-m)
    return int(m[rows, cols].sum())


def mot_metrics(gt_frames: list, pred_frames: list) -> dict[str, Any]:
    """MOTA, IDF1, HOTA (with DetA and AssA), ID switches, FP, FN and the numbers of GT
    objects and tracks over aligned per-frame lists of (id, xyxy)."""
    num_gt = num_pred = fp = fn = idsw = 0
    last_match: dict[int, int] = {}  # gt id -> pred id it was last matched to
    previous: dict[int, int] = {}  # the same, for the previous frame's matches only
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)  # IoU>=0.5 co-occurrences
    gt_len: dict[int, int] = defaultdict(int)
    pred_len: dict[int, int] = defaultdict(int)
    frames = []
    for g_items, p_items in zip(gt_frames, pred_frames):
        g_ids, g_boxes = _split(g_items)
        p_ids, p_boxes = _split(p_items)
        num_gt += len(g_ids)
        num_pred += len(p_ids)
        for i in g_ids:
            gt_len[int(i)] += 1
        for i in p_ids:
            pred_len[int(i)] += 1
        iou = box_iou(g_boxes, p_boxes)
        frames.append((g_ids, p_ids, iou))
        for gi, pi in zip(*np.nonzero(iou >= IOU_MATCH - _EPS)):
            pair_counts[(int(g_ids[gi]), int(p_ids[pi]))] += 1
        matched = _clear_match(iou, g_ids, p_ids, previous)
        previous = {}
        for gi, pj in matched:
            gid, pid = int(g_ids[gi]), int(p_ids[pj])
            if gid in last_match and last_match[gid] != pid:
                idsw += 1
            last_match[gid] = previous[gid] = pid
        fn += len(g_ids) - len(matched)
        fp += len(p_ids) - len(matched)
    idtp = _idtp(pair_counts, sorted(gt_len), sorted(pred_len))
    idf1 = 2 * idtp / (num_gt + num_pred) if (num_gt + num_pred) else 1.0
    mota = 1 - (fn + fp + idsw) / num_gt if num_gt else 1.0
    out = {"mota": round(mota, 4), "idf1": round(idf1, 4), "id_switches": idsw,
           "false_positives": fp, "false_negatives": fn, "gt_objects": num_gt, "gt_tracks": len(gt_len)}
    out.update(hota(frames, sorted(gt_len), sorted(pred_len)))
    return out


def hota(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]], gt_ids: list[int], pred_ids: list[int]) -> dict[str, float]:
    """HOTA, DetA and AssA (means over :data:`HOTA_ALPHAS`) of per-frame (GT ids,
    predicted ids, IoU matrix), ids listed in ``gt_ids`` and ``pred_ids``."""
    if not gt_ids or not pred_ids:  # TrackEval: nothing to associate, every score 0 (1 when both are empty)
        score = 1.0 if not gt_ids and not pred_ids else 0.0
        return {"hota": score, "deta": score, "assa": score}
    g_of = {g: i for i, g in enumerate(gt_ids)}
    p_of = {p: i for i, p in enumerate(pred_ids)}
    indexed = [(np.array([g_of[int(g)] for g in gi], np.int64), np.array([p_of[int(p)] for p in pi], np.int64), iou)
               for gi, pi, iou in frames]
    potential = np.zeros((len(gt_ids), len(pred_ids)))
    gt_count = np.zeros((len(gt_ids), 1))
    pred_count = np.zeros((1, len(pred_ids)))
    for g, p, iou in indexed:
        denom = iou.sum(0)[None, :] + iou.sum(1)[:, None] - iou
        sim = np.zeros_like(iou)
        ok = denom > _EPS
        sim[ok] = iou[ok] / denom[ok]
        potential[g[:, None], p[None, :]] += sim
        gt_count[g] += 1
        pred_count[0, p] += 1
    alignment = potential / (gt_count + pred_count - potential)
    n_alpha = len(HOTA_ALPHAS)
    tp, fn, fp = np.zeros(n_alpha), np.zeros(n_alpha), np.zeros(n_alpha)
    matches = np.zeros((n_alpha, len(gt_ids), len(pred_ids)))
    for g, p, iou in indexed:
        if not len(g) or not len(p):
            fn += len(g)
            fp += len(p)
            continue
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], p[None, :]] * iou))
        for a, alpha in enumerate(HOTA_ALPHAS):
            ok = iou[rows, cols] >= alpha - _EPS
            n = int(ok.sum())
            tp[a] += n
            fn[a] += len(g) - n
            fp[a] += len(p) - n
            matches[a, g[rows[ok]], p[cols[ok]]] += 1
    assa = np.array([np.sum(m * (m / np.maximum(1, gt_count + pred_count - m))) for m in matches]) / np.maximum(1, tp)
    deta = tp / np.maximum(1, tp + fn + fp)
    return {"hota": round(float(np.mean(np.sqrt(deta * assa))), 4), "deta": round(float(np.mean(deta)), 4),
            "assa": round(float(np.mean(assa)), 4)}
