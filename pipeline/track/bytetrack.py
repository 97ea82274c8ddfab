"""ByteTrack (Zhang et al., 2022), our own struct-of-arrays implementation.

Association in rounds, each by the Hungarian method:
1. high-score detections ↔ confirmed and lost tracks (IoU fused with the score, plus
   OC-SORT's direction bonus, OCM);
2. low-score detections ↔ confirmed tracks still unmatched (recovers occluded objects);
3. (``observation_centric``) remaining high-score detections ↔ confirmed tracks still
   unmatched, on the IoU with their last *observed* box (OC-SORT's OCR);
4. (``reidentify_lost``) remaining high-score detections ↔ lost tracks, by where the
   motion observed before the track was lost puts it now, or (``appearance``, given the
   frame) by a mean colour close to the track's within reach of there;
in rounds 3 and 4 a detection of another class than the track costs ``class_change_cost``
more (a half-hidden object's class is the detector's least sure output);
5. remaining high-score detections ↔ tentative tracks.
A track re-found after a gap has its Kalman state re-updated along a straight line from
its last observation (OC-SORT's ORU, ``observation_centric``): see pipeline/track/recovery.py.
Unmatched high-score detections above ``new_track_threshold`` start tentative tracks; a
track gets its id after ``minimum_consecutive_frames`` matched frames in a row (at once
on a stream's first frame); a track unseen for ``lost_track_seconds`` is dropped.

Tracks are arrays (means, covariances, ids, hits, ...), so a frame costs a few vectorised
NumPy calls and one small assignment problem per round, not a Python loop per object.

Example:
    >>> import numpy as np
    >>> from pipeline.vision.detections import Detections
    >>> tracker = ByteTrack(TrackerConfig(minimum_consecutive_frames=2), fps=30)
    >>> for x in range(3):
    ...     dets = Detections([[10 + x, 10, 50 + x, 50]], [0.9], [0], (100, 100))
    ...     out = tracker.update(dets)
    >>> out.tracker_id.tolist()
    [1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.track.appearance import blend_colours, colour_distance, mean_colours
from pipeline.track.association import associate, mask_iou_matrix, not_duplicates, scale_mask
from pipeline.track.config import TrackerConfig
from pipeline.track.kalman import BatchKalman, xyah_to_xyxy, xyxy_to_xyah
from pipeline.track.keypoints import gather
from pipeline.track.recovery import Observations
from pipeline.vision.detections import Detections
from pipeline.vision.geometry import box_iou, mask_boxes

# Round 2 (low-score detections): max 1 - IoU. These boxes are often blurred or half
# hidden, and their IoU is not weighed by the score, so a match needs a real overlap.
LOW_SCORE_MATCH_THRESHOLD = 0.5
# Round 3 (tentative tracks): max 1 - IoU·score. A track seen once has no velocity yet,
# so its predicted box lags a moving object: a looser bound than round 2's.
TENTATIVE_MATCH_THRESHOLD = 0.7
# Round 3 (last observed box, OCR): max 1 - IoU; OC-SORT's IoU threshold of 0.3.
LAST_OBSERVED_MATCH_THRESHOLD = 0.7
# ORU re-updates tracks re-found after more than this many frames since their last observation.
ORU_MIN_GAP = 2
# Round 4 (re-identification): max cost of Observations.reid_cost, i.e. at least about
# half of the detection inside where the lost object should be.
REID_MATCH_THRESHOLD = 0.5


@dataclass
class _Frame:
    """One update's working state: its detections, the tracks' predicted boxes, and the
    matches made so far by the association rounds."""

    dets: Detections
    colours: np.ndarray | None  # (N, 3) the detections' mean colours (appearance), None without the frame
    pred: np.ndarray  # (T, 4) xyxy: every track's box predicted for this frame
    confirmed: np.ndarray  # (T,) bool: the track has an id (tracked or lost)
    det_track: np.ndarray  # (N,) the index of the track each detection joined (-1: none)
    matched: np.ndarray  # (T,) bool: the track joined a detection


class ByteTrack:
    """One stream's tracks. ``fps`` turns ``lost_track_seconds`` into frames, so a track
    survives the same time at any frame rate."""

    def __init__(self, config: TrackerConfig | None = None, fps: float | None = 30.0) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.fps = fps if fps and fps > 0 else 30.0
        self.max_lost = max(1, int(math.ceil(self.config.lost_track_seconds * self.fps)))
        self.max_speed_widths = self.config.reid_max_speed / self.fps  # frame widths per frame
        self.min_hits = self.config.minimum_consecutive_frames  # validated >= 1
        self.kf = BatchKalman()
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
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
        self.colour = np.zeros((0, 3))  # mean BGR of each track's observations (NaN: unknown)
        self.masks: list[np.ndarray | None] = []  # last mask crop of each track
        self.kps: list[np.ndarray | None] = []  # last keypoints (K, 3) of each track (pose models) ...
        self.kp_boxes: list[np.ndarray | None] = []  # ... and the box they were seen in
        self.keypoint_names: Sequence[str] = ()
        self.obs = Observations()  # what was observed of each track (recovery after occlusion)

    def __len__(self) -> int:
        return len(self.tid)

    # -- per frame --------------------------------------------------------------------------
    def update(self, dets: Detections, image: np.ndarray | None = None) -> Detections:
        """Match ``dets`` to the tracks; returns them with ``tracker_id`` set (-1: not
        tracked). ``image``: the frame they were found in (H, W, 3 BGR), for their colours
        (``appearance``)."""
        self.frame += 1
        f = self._predict_tracks(dets, self._colours(dets, image))
        cfg = self.config
        scores = dets.confidence
        high = np.flatnonzero(scores >= cfg.track_high_threshold)
        low = np.flatnonzero((scores >= cfg.track_low_threshold) & (scores < cfg.track_high_threshold))
        rest_high = self._match_confident(f, high)
        self._match_low_scores(f, low)
        if cfg.observation_centric or cfg.reidentify_lost:
            recover = not_duplicates(f.dets.xyxy, rest_high, f.det_track >= 0) if cfg.skip_duplicates else rest_high
            if cfg.observation_centric:
                recover = self._match_last_observed(f, recover)
            if cfg.reidentify_lost:
                recover = self._reidentify(f, recover)
            rest_high = rest_high[f.det_track[rest_high] < 0]
        rest_high = self._match_tentative(f, rest_high)
        self._update_matched(f)
        keep = self._lose_unmatched(f)
        self._promote(keep)
        out_ids = np.where(f.det_track >= 0, self.tid[np.maximum(f.det_track, 0)] if len(self) else -1, -1)
        if cfg.skip_duplicates:
            rest_high = not_duplicates(f.dets.xyxy, rest_high, f.det_track >= 0)
        self._keep(keep)
        self._spawn(f, rest_high, out_ids)
        dets.tracker_id = out_ids.astype(np.int64)
        return dets

    def _colours(self, dets: Detections, image: np.ndarray | None) -> np.ndarray | None:
        """The detections' mean colours where appearance will use them: confident ones
        (re-identification, new tracks and the tracks' averages take no other; NaN below
        ``track_high_threshold``); None without the frame."""
        cfg = self.config
        if image is None or not (cfg.appearance and cfg.reidentify_lost and cfg.appearance_threshold > 0):
            return None
        return mean_colours(image, dets, np.flatnonzero(dets.confidence >= cfg.track_high_threshold))

    def _predict_tracks(self, dets: Detections, colours: np.ndarray | None) -> _Frame:
        """Advance every track one frame with the motion model; the frame's empty matches."""
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)
        pred = xyah_to_xyxy(self.mean[:, :4]) if len(self) else np.zeros((0, 4))
        return _Frame(dets, colours, pred, self.tid >= 0, np.full(len(dets), -1, np.int64), np.zeros(len(self), bool))

    def _match_confident(self, f: _Frame, high: np.ndarray) -> np.ndarray:
        """Round 1: high-score detections ↔ confirmed (tracked or lost) tracks. Returns
        the high-score detections left."""
        pool = np.flatnonzero(f.confirmed)
        cfg = self.config
        cost = self._cost(pool, high, f.pred, f.dets, cfg.fuse_score, f.dets.masks)
        bonus = self.obs.direction_bonus(pool, f.dets.xyxy[high], f.dets.confidence[high], cfg.direction_weight, cost,
                                         cfg.match_threshold)
        self._match(f, pool, high, cfg.match_threshold, cost, cost - bonus)
        return high[f.det_track[high] < 0]

    def _match_low_scores(self, f: _Frame, low: np.ndarray) -> None:
        """Round 2: low-score detections ↔ confirmed tracks that were tracked last frame
        and are still unmatched (an occluded object keeps its id); plain box IoU."""
        pool = np.flatnonzero(f.confirmed & ~self.lost & ~f.matched)
        self._match(f, pool, low, LOW_SCORE_MATCH_THRESHOLD, self._cost(pool, low, f.pred, f.dets, False, None))

    def _match_last_observed(self, f: _Frame, rest_high: np.ndarray) -> np.ndarray:
        """Round 3 (OCR): the high-score detections left ↔ confirmed tracks still unmatched,
        on the IoU with the box each track was last *observed* at (its prediction may have
        drifted while it was unseen); another class costs ``class_change_cost`` more. Returns
        the detections left."""
        pool = np.flatnonzero(f.confirmed & ~f.matched)
        if not len(pool) or not len(rest_high):
            return rest_high
        iou = box_iou(self.obs.last_boxes(pool), f.dets.xyxy[rest_high])
        changed = self.cls[pool][:, None] != f.dets.class_id[rest_high][None, :]
        cost = 1.0 - iou + self.config.class_change_cost * changed
        self._match(f, pool, rest_high, LAST_OBSERVED_MATCH_THRESHOLD, cost)
        return rest_high[f.det_track[rest_high] < 0]

    def _reidentify(self, f: _Frame, rest_high: np.ndarray) -> np.ndarray:
        """Round 4: the high-score detections left ↔ lost tracks, where the motion observed
        before each was lost puts it now, or (with the detections' colours) of nearly the
        track's colour within reach of there: the cheaper of the two; another class costs
        ``class_change_cost`` more. Returns the detections left."""
        pool = np.flatnonzero(f.confirmed & self.lost & ~f.matched)
        if not len(pool) or not len(rest_high):
            return rest_high
        dets, cfg = f.dets, self.config
        colour = None
        if f.colours is not None:
            colour = colour_distance(self.colour[pool], f.colours[rest_high]) / cfg.appearance_threshold
        cost = self.obs.reid_cost(pool, self.cls[pool], dets.xyxy[rest_high].astype(np.float64), dets.class_id[rest_high],
                                  self.frame, cfg.class_change_cost, colour, self.max_speed_widths * dets.image_hw[1],
                                  dets.image_hw)
        self._match(f, pool, rest_high, REID_MATCH_THRESHOLD, cost)
        return rest_high[f.det_track[rest_high] < 0]

    def _match_tentative(self, f: _Frame, rest_high: np.ndarray) -> np.ndarray:
        """Round 3: the high-score detections left ↔ tentative tracks. Returns those
        still left (candidates for new tracks)."""
        pool = np.flatnonzero(~f.confirmed)
        cost = self._cost(pool, rest_high, f.pred, f.dets, self.config.fuse_score, f.dets.masks)
        self._match(f, pool, rest_high, TENTATIVE_MATCH_THRESHOLD, cost)
        return rest_high[f.det_track[rest_high] < 0]

    def _match(self, f: _Frame, pool: np.ndarray, candidates: np.ndarray, threshold: float, cost: np.ndarray,
               objective: np.ndarray | None = None) -> np.ndarray:
        """One round: tracks ``pool`` ↔ detections ``candidates`` (indices) on ``cost`` (the
        assignment minimises ``objective`` when given); records the matches in ``f`` and
        returns the detections matched."""
        r, c = associate(cost, threshold, objective)
        f.det_track[candidates[c]] = pool[r]
        f.matched[pool[r]] = True
        return candidates[c]

    def _cost(self, t_idx: np.ndarray, d_idx: np.ndarray, pred: np.ndarray, dets: Detections, fuse: bool,
              masks: Sequence[np.ndarray] | None) -> np.ndarray:
        """1 - IoU of tracks ``t_idx`` × detections ``d_idx`` (mask IoU when configured and
        the detections have masks), weighed by the detection score when ``fuse``."""
        iou = box_iou(pred[t_idx], dets.xyxy[d_idx])
        if self.config.mask_iou and masks is not None:
            t_boxes = mask_boxes(pred[t_idx], dets.image_hw)
            t_masks = [None if (m := self.masks[i]) is None else scale_mask(m, b) for i, b in zip(t_idx, t_boxes)]
            iou = mask_iou_matrix(t_boxes, t_masks, dets.mask_boxes[d_idx], [masks[j] for j in d_idx], iou)
        if fuse:
            iou = iou * dets.confidence[d_idx][None, :]
        return 1.0 - iou

    def _update_matched(self, f: _Frame) -> None:
        """Matched tracks take their detection's box (one batched Kalman update), score,
        class and mask; a track re-found after a gap is first re-updated from its last
        observation (ORU, ``observation_centric``)."""
        dets = f.dets
        d_idx = np.flatnonzero(f.det_track >= 0)
        t_idx = f.det_track[d_idx]
        if not len(t_idx):
            return
        boxes = dets.xyxy[d_idx].astype(np.float64)
        gaps = self.frame - self.last_seen[t_idx]
        # One missed frame is left to the filter: its one-frame prediction has not drifted,
        # and replaying it would cost more than it corrects.
        refound = np.flatnonzero(gaps > ORU_MIN_GAP) if self.config.observation_centric else np.zeros(0, np.int64)
        if len(refound):
            rows = t_idx[refound]
            self.mean[rows], self.cov[rows] = self.obs.reupdate(self.kf, rows, gaps[refound], boxes[refound])
        m, cv = self.kf.update(self.mean[t_idx], self.cov[t_idx], xyxy_to_xyah(boxes))
        self.mean[t_idx], self.cov[t_idx] = m, cv
        self.obs.observe(t_idx, boxes, gaps, m, cv, self.frame)
        self.hits[t_idx] += 1
        self.last_seen[t_idx] = self.frame
        self.lost[t_idx] = False
        self.score[t_idx] = dets.confidence[d_idx]
        self.cls[t_idx] = dets.class_id[d_idx]
        if f.colours is not None:  # from confident detections only: a faint one is often half hidden
            sure = dets.confidence[d_idx] >= self.config.track_high_threshold
            self.colour[t_idx[sure]] = blend_colours(self.colour[t_idx[sure]], f.colours[d_idx[sure]])
        if dets.masks is not None:
            for t, d in zip(t_idx.tolist(), d_idx.tolist()):
                self.masks[t] = dets.masks[d]
        if dets.keypoints is not None:
            self.keypoint_names = dets.keypoint_names
            for t, d in zip(t_idx.tolist(), d_idx.tolist()):
                self.kps[t], self.kp_boxes[t] = dets.keypoints[d], dets.xyxy[d]

    def _lose_unmatched(self, f: _Frame) -> np.ndarray:
        """Unmatched confirmed tracks become lost, unmatched tentative ones are dropped, as
        are tracks lost for longer than ``max_lost`` frames. Returns the tracks to keep."""
        unmatched = ~f.matched
        self.hits[unmatched] = 0
        self.lost[unmatched & f.confirmed] = True
        return ~(unmatched & ~f.confirmed) & (self.frame - self.last_seen <= self.max_lost)

    def _promote(self, keep: np.ndarray) -> None:
        """Tentative tracks (kept) with enough consecutive hits get their id now."""
        promote = (self.tid < 0) & (self.hits >= self.min_hits) & keep
        self.tid[promote] = self._new_ids(int(promote.sum()))

    def _new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        return ids

    def _keep(self, keep: np.ndarray) -> None:
        self.mean, self.cov, self.tid, self.lost = self.mean[keep], self.cov[keep], self.tid[keep], self.lost[keep]
        self.hits, self.last_seen, self.score, self.cls = self.hits[keep], self.last_seen[keep], self.score[keep], self.cls[keep]
        self.colour = self.colour[keep]
        self.obs.keep(keep)
        kept = np.flatnonzero(keep).tolist()
        self.masks = [self.masks[i] for i in kept]
        self.kps, self.kp_boxes = [self.kps[i] for i in kept], [self.kp_boxes[i] for i in kept]

    def _spawn(self, f: _Frame, rest_high: np.ndarray, out_ids: np.ndarray) -> None:
        """New tentative tracks from the unmatched detections above ``new_track_threshold``;
        on the stream's first frame (or with ``minimum_consecutive_frames`` 1) they get
        their ids at once, written to ``out_ids``."""
        dets = f.dets
        new = rest_high[dets.confidence[rest_high] >= self.config.new_track_threshold]
        if not len(new):
            return
        boxes = dets.xyxy[new].astype(np.float64)
        mean, cov = self.kf.initiate(xyxy_to_xyah(boxes))
        self.obs.append(boxes, mean, cov, self.frame)
        ids = np.full(len(new), -1, np.int64)
        if self.frame == 1 or self.min_hits <= 1:
            ids = self._new_ids(len(new))
            out_ids[new] = ids
        n = len(new)
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.tid = np.concatenate([self.tid, ids])
        self.lost = np.concatenate([self.lost, np.zeros(n, bool)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, self.frame)])
        self.score = np.concatenate([self.score, dets.confidence[new]])
        self.cls = np.concatenate([self.cls, dets.class_id[new]])
        self.colour = np.concatenate([self.colour, f.colours[new] if f.colours is not None else np.full((n, 3), np.nan)])
        self.masks.extend([dets.masks[i] for i in new] if dets.masks is not None else [None] * n)
        self.kps.extend([dets.keypoints[i] for i in new] if dets.keypoints is not None else [None] * n)
        self.kp_boxes.extend([dets.xyxy[i] for i in new] if dets.keypoints is not None else [None] * n)
        if dets.keypoints is not None:
            self.keypoint_names = dets.keypoint_names

    # -- frames without inference -----------------------------------------------------------
    def predict(self, image_hw: tuple[int, int], class_names: Sequence[str] = (), with_masks: bool = True) -> Detections:
        """A frame without inference: advance the motion model one frame and return the
        confirmed, currently tracked objects at their predicted boxes (masks scaled,
        keypoints moved with their box)."""
        self.frame += 1
        self.mean, self.cov = self.kf.predict(self.mean, self.cov)
        show = np.flatnonzero((self.tid >= 0) & ~self.lost)
        h, w = image_hw
        pred = xyah_to_xyxy(self.mean[show, :4]) if len(show) else np.zeros((0, 4))
        keypoints = gather(self.kps, self.kp_boxes, show, pred)  # with the unclipped box: clipping would squash them
        xyxy = np.clip(pred, 0, [w, h, w, h]).astype(np.float32)
        masks = None
        if with_masks:
            boxes = mask_boxes(xyxy, image_hw)
            masks = [np.zeros((b[3] - b[1], b[2] - b[0]), bool) if (m := self.masks[i]) is None else scale_mask(m, b)
                     for i, b in zip(show.tolist(), boxes)]
        return Detections(xyxy, self.score[show], self.cls[show], image_hw, masks, self.tid[show], class_names,
                          keypoints=keypoints, keypoint_names=self.keypoint_names if keypoints is not None else ())
