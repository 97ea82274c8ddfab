"""ByteTrack (Zhang et al., 2022), our own struct-of-arrays implementation.

Association in three rounds, each by the Hungarian method on IoU:
1. high-score detections ↔ confirmed and lost tracks (IoU fused with the score);
2. low-score detections ↔ confirmed tracks still unmatched (recovers occluded objects);
3. remaining high-score detections ↔ tentative tracks.
Unmatched high-score detections above ``new_track_threshold`` start tentative tracks; a
track gets its id after ``minimum_consecutive_frames`` matched frames in a row (at once
on a stream's first frame); a track unseen for ``lost_track_seconds`` is dropped.

Tracks are arrays (means, covariances, ids, hits, ...), so a frame costs a few vectorised
NumPy calls and one small assignment problem per round, not a Python loop per object.

Example:
    >>> import numpy as np
    >>> from pipeline.vision.detections import Detections
    >>> tracker = ByteTrack(fps=30)
    >>> for x in range(3):
    ...     dets = Detections([[10 + x, 10, 50 + x, 50]], [0.9], [0], (100, 100))
    ...     out = tracker.update(dets)
    >>> out.tracker_id.tolist()
    [1]
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.track.kalman import BatchKalman, xyah_to_xyxy, xyxy_to_xyah
from pipeline.vision.detections import Detections
from pipeline.vision.geometry import box_iou, mask_boxes


def mask_iou_matrix(boxes_a: np.ndarray, masks_a: list, boxes_b: np.ndarray, masks_b: list, box_iou: np.ndarray) -> np.ndarray:
    """Mask IoU for the pairs whose boxes overlap (others stay 0). Masks are crops at
    the integer boxes ``boxes_*`` (x0, y0, x1, y1)."""
    out = np.zeros_like(box_iou)
    for i, j in zip(*np.nonzero(box_iou > 0)):
        ma, mb = masks_a[i], masks_b[j]
        if ma is None or mb is None:
            out[i, j] = box_iou[i, j]
            continue
        ax0, ay0, bx0, by0 = boxes_a[i, 0], boxes_a[i, 1], boxes_b[j, 0], boxes_b[j, 1]
        x0, y0 = max(ax0, bx0), max(ay0, by0)
        x1, y1 = min(ax0 + ma.shape[1], bx0 + mb.shape[1]), min(ay0 + ma.shape[0], by0 + mb.shape[0])
        inter = 0
        if x1 > x0 and y1 > y0:
            inter = int(np.logical_and(ma[y0 - ay0 : y1 - ay0, x0 - ax0 : x1 - ax0], mb[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]).sum())
        union = int(ma.sum()) + int(mb.sum()) - inter
        out[i, j] = inter / union if union else 0.0
    return out


def associate(cost: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching; pairs with cost above ``threshold`` are not matches.
    Returns (row indices, column indices) of the matches."""
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] <= threshold
    return rows[ok], cols[ok]


class ByteTrack:
    def __init__(
        self,
        fps: float = 30.0,
        track_high_threshold: float = 0.5,
        track_low_threshold: float = 0.1,
        new_track_threshold: float = 0.6,
        match_threshold: float = 0.8,
        lost_track_seconds: float = 1.0,
        minimum_consecutive_frames: int = 2,
        mask_iou: bool = False,
        fuse_score: bool = True,
    ) -> None:
        self.fps = fps if fps and fps > 0 else 30.0
        self.high = track_high_threshold
        self.low = track_low_threshold
        self.new_thresh = new_track_threshold
        self.match_thresh = match_threshold
        self.max_lost = max(1, int(math.ceil(lost_track_seconds * self.fps)))
        self.min_hits = max(1, minimum_consecutive_frames)
        self.use_mask_iou = mask_iou
        self.fuse_score = fuse_score
        self.kf = BatchKalman()
        self.reset()

    def reset(self) -> None:
        self.frame = 0
        self._next_id = 1
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.tid = np.zeros(0, np.int64)  # -1: tentative
        self.lost = np.zeros(0, bool)
        self.hits = np.zeros(0, np.int64)
        self.last_seen = np.zeros(0, np.int64)
        self.score = np.zeros(0, np.float32)
        self.cls = np.zeros(0, np.int64)
        self.masks: list[np.ndarray | None] = []  # last mask crop of each track

    def __len__(self) -> int:
        return len(self.tid)

    # -- per frame --------------------------------------------------------------------------
    def _keep(self, keep: np.ndarray) -> None:
        self.mean, self.cov, self.tid, self.lost = self.mean[keep], self.cov[keep], self.tid[keep], self.lost[keep]
        self.hits, self.last_seen, self.score, self.cls = self.hits[keep], self.last_seen[keep], self.score[keep], self.cls[keep]
        self.masks = [self.masks[i] for i in np.flatnonzero(keep)]

    def _cost(self, t_idx: np.ndarray, d_idx: np.ndarray, pred: np.ndarray, dets: Detections, fuse: bool, masks) -> np.ndarray:
        iou = box_iou(pred[t_idx], dets.xyxy[d_idx])
        if self.use_mask_iou and masks is not None:
            t_boxes = mask_boxes(pred[t_idx], dets.image_hw)
            t_masks = [self._mask_at(self.masks[i], b) for i, b in zip(t_idx, t_boxes)]
            iou = mask_iou_matrix(t_boxes, t_masks, dets.mask_boxes[d_idx], [masks[j] for j in d_idx], iou)
        if fuse:
            iou = iou * dets.confidence[d_idx][None, :]
        return 1.0 - iou

    @staticmethod
    def _mask_at(mask: np.ndarray | None, box: np.ndarray) -> np.ndarray | None:
        """The track's last mask scaled to ``box`` (x0, y0, x1, y1 integers)."""
        if mask is None:
            return None
        w, h = int(box[2] - box[0]), int(box[3] - box[1])
        if w <= 0 or h <= 0:
            return np.zeros((max(h, 0), max(w, 0)), bool)
        if mask.shape == (h, w):
            return mask
        return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)

    def update(self, dets: Detections) -> Detections:
        """Match ``dets`` to the tracks; returns them with ``tracker_id`` set (-1: not tracked)."""
        self.frame += 1
        first_frame = self.frame == 1
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)
        pred = xyah_to_xyxy(self.mean[:, :4]) if len(self) else np.zeros((0, 4))
        n_det = len(dets)
        scores = dets.confidence
        det_track = np.full(n_det, -1, np.int64)  # index of the track each detection joins
        high = np.flatnonzero(scores >= self.high)
        low = np.flatnonzero((scores >= self.low) & (scores < self.high))
        confirmed = self.tid >= 0
        matched_t = np.zeros(len(self), bool)
        masks = dets.masks
        # 1. high-score detections with confirmed (tracked or lost) tracks.
        pool = np.flatnonzero(confirmed)
        r, c = associate(self._cost(pool, high, pred, dets, self.fuse_score, masks), self.match_thresh)
        det_track[high[c]] = pool[r]
        matched_t[pool[r]] = True
        rest_high = np.setdiff1d(high, high[c], assume_unique=True)
        # 2. low-score detections with confirmed tracks that were tracked last frame.
        pool2 = np.flatnonzero(confirmed & ~self.lost & ~matched_t)
        r, c = associate(self._cost(pool2, low, pred, dets, False, None), 0.5)
        det_track[low[c]] = pool2[r]
        matched_t[pool2[r]] = True
        # 3. remaining high-score detections with tentative tracks.
        pool3 = np.flatnonzero(~confirmed)
        r, c = associate(self._cost(pool3, rest_high, pred, dets, self.fuse_score, masks), 0.7)
        det_track[rest_high[c]] = pool3[r]
        matched_t[pool3[r]] = True
        rest_high = np.setdiff1d(rest_high, rest_high[c], assume_unique=True)

        # Update matched tracks with their detections (one batched Kalman update).
        d_idx = np.flatnonzero(det_track >= 0)
        t_idx = det_track[d_idx]
        if len(t_idx):
            m, cv = self.kf.update(self.mean[t_idx], self.cov[t_idx], xyxy_to_xyah(dets.xyxy[d_idx].astype(np.float64)))
            self.mean[t_idx], self.cov[t_idx] = m, cv
            self.hits[t_idx] += 1
            self.last_seen[t_idx] = self.frame
            self.lost[t_idx] = False
            self.score[t_idx] = scores[d_idx]
            self.cls[t_idx] = dets.class_id[d_idx]
            if masks is not None:
                for t, d in zip(t_idx.tolist(), d_idx.tolist()):
                    self.masks[t] = masks[d]
        # Unmatched: confirmed tracks become lost, tentative ones are dropped.
        unmatched = ~matched_t
        self.hits[unmatched] = 0
        self.lost[unmatched & confirmed] = True
        keep = ~(unmatched & ~confirmed) & (self.frame - self.last_seen <= self.max_lost)
        # Tentative tracks with enough consecutive hits get their id now.
        promote = (self.tid < 0) & (self.hits >= self.min_hits) & keep
        n_new_ids = int(promote.sum())
        self.tid[promote] = np.arange(self._next_id, self._next_id + n_new_ids)
        self._next_id += n_new_ids
        out_ids = np.where(det_track >= 0, self.tid[np.maximum(det_track, 0)] if len(self) else -1, -1)
        self._keep(keep)
        # New tentative tracks from unmatched confident detections.
        new = rest_high[scores[rest_high] >= self.new_thresh]
        if len(new):
            m, cv = self.kf.initiate(xyxy_to_xyah(dets.xyxy[new].astype(np.float64)))
            ids = np.full(len(new), -1, np.int64)
            if first_frame or self.min_hits <= 1:
                ids = np.arange(self._next_id, self._next_id + len(new))
                self._next_id += len(new)
                out_ids[new] = ids
            self.mean = np.concatenate([self.mean, m])
            self.cov = np.concatenate([self.cov, cv])
            self.tid = np.concatenate([self.tid, ids])
            self.lost = np.concatenate([self.lost, np.zeros(len(new), bool)])
            self.hits = np.concatenate([self.hits, np.ones(len(new), np.int64)])
            self.last_seen = np.concatenate([self.last_seen, np.full(len(new), self.frame)])
            self.score = np.concatenate([self.score, scores[new]])
            self.cls = np.concatenate([self.cls, dets.class_id[new]])
            self.masks.extend([masks[i] for i in new] if masks is not None else [None] * len(new))
        dets.tracker_id = out_ids.astype(np.int64)
        return dets

    def predict(self, image_hw: tuple[int, int], class_names=(), with_masks: bool = True) -> Detections:
        """A frame without inference: advance the motion model one frame and return the
        confirmed, currently tracked objects at their predicted boxes (masks scaled)."""
        self.frame += 1
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)
        show = np.flatnonzero((self.tid >= 0) & ~self.lost)
        h, w = image_hw
        xyxy = xyah_to_xyxy(self.mean[show, :4]) if len(show) else np.zeros((0, 4))
        xyxy = np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32)
        masks = None
        if with_masks:
            boxes = mask_boxes(xyxy, image_hw)
            masks = [self._mask_at(self.masks[i], b) if self.masks[i] is not None else np.zeros((b[3] - b[1], b[2] - b[0]), bool)
                     for i, b in zip(show.tolist(), boxes)]
        return Detections(xyxy, self.score[show], self.cls[show], image_hw, masks, self.tid[show], class_names)
