"""Observation-centric track state (OC-SORT's ideas, Cao et al. 2023) and re-identification
of lost tracks by motion and class (and, given colours, appearance: :mod:`pipeline.track.appearance`).

The Kalman filter alone loses objects that pass behind something: while an object is half
hidden its visible box stops advancing, the filter's velocity collapses, and the predicted
box waits at the near edge of the occluder while the object comes out at the far edge.
What was *observed* is more trustworthy than what was predicted, so each track also keeps:

* its last few observed boxes, for the direction of motion between observations (OCM: a
  bonus in the first association round for detections that continue that direction) and
  for the recovery round on the last observed box (OCR);
* the Kalman state right after its last observation, so that a track re-found after a gap
  is re-updated along a virtual trajectory from that observation to the new one (ORU),
  instead of keeping the velocity it had collapsed to while unseen;
* an *anchor*: its last observation at full size (not shrunk by a partial occlusion) and
  the centre velocity measured between such observations, to extrapolate where a lost
  object should re-appear (re-identification: a detection lying inside that extrapolated
  box, preferably of its class: the detector may flip the class of a half-hidden object).

All of it is arrays over tracks, indexed like the tracker's own arrays.

Example:
    >>> obs = Observations()
    >>> box = np.array([[0.0, 0.0, 10.0, 10.0]])
    >>> obs.append(box, np.zeros((1, 8)), np.zeros((1, 8, 8)), frame=1)
    >>> obs.observe(np.array([0]), box + 5, np.array([1]), np.zeros((1, 8)), np.zeros((1, 8, 8)), frame=2)
    >>> obs.velocity.tolist()
    [[5.0, 5.0]]
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from pipeline.track.appearance import colour_reid_cost
from pipeline.track.kalman import BatchKalman, xyxy_to_xyah

#: Observed boxes kept per track; OCM's direction runs from the oldest to the newest
#: (OC-SORT's delta_t = 3 observations apart).
HISTORY = 3
#: A box is "full size" when both sides are at least this share of the track's reference
#: size (its largest recent sides); smaller ones are taken as partly hidden.
FULL_SIZE = 0.92
#: The reference size forgets slowly (per observation), so an object that really turns or
#: recedes is not taken as partly hidden for ever.
SIZE_DECAY = 0.97
#: An edge that moves against the other by at most this share of the other's move is
#: held (jitter), not a sign that the object grows or shrinks.
HELD_EDGE = 0.25
#: Weight of a new velocity measurement (the rest: the previous estimate).
VELOCITY_GAIN = 0.5
#: Re-identification: the extrapolated box grows on each side by this share of its size,
#: plus REID_SPREAD per frame unseen (velocity errors add up), up to REID_MAX_MARGIN.
REID_MARGIN, REID_SPREAD, REID_MAX_MARGIN = 0.15, 0.02, 1.0
#: A re-identified detection is at most this much larger (area) than the lost object.
REID_MAX_GROWTH = 1.5


def centres(xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) centres of (N, 4) boxes."""
    return (xyxy[..., :2] + xyxy[..., 2:]) / 2


def edge_velocity(before: np.ndarray, after: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(N, 2) velocity (px/frame) of objects seen at boxes ``before`` and, ``frames``
    later, ``after``, read from the box edges: per axis, when both edges move the same way,
    or one barely moves (under HELD_EDGE of the other: a detector's pixel of jitter on an
    edge held still), the one that moved more (an object sliding behind an occluder has one
    edge held at the occluder's border while the other moves with it: the centre would
    move at half speed); when they move apart or together alike (the object grows or
    shrinks), the centre.

    Example:
        >>> edge_velocity(np.array([[0.0, 0, 60, 60]]), np.array([[8.0, 0, 60, 60]]), np.array([1])).tolist()
        [[8.0, 0.0]]
        >>> edge_velocity(np.array([[0.0, 0, 60, 60]]), np.array([[8.0, 0, 59, 60]]), np.array([1])).tolist()
        [[8.0, 0.0]]
    """
    d = (after - before) / frames[:, None]
    lo, hi = d[:, :2], d[:, 2:]
    slide = (lo * hi >= 0) | (np.minimum(np.abs(lo), np.abs(hi)) <= HELD_EDGE * np.maximum(np.abs(lo), np.abs(hi)))
    return np.where(slide, np.where(np.abs(lo) >= np.abs(hi), lo, hi), (lo + hi) / 2)


class Observations:
    """Per-track observation state; the tracker appends, observes and keeps rows in step
    with its own arrays."""

    def __init__(self) -> None:
        self.boxes = np.zeros((0, HISTORY, 4))  # last observed boxes, oldest first
        self.mean = np.zeros((0, 8))  # Kalman state right after the last observation
        self.cov = np.zeros((0, 8, 8))
        self.anchor = np.zeros((0, 4))  # last full-size observed box ...
        self.anchor_frame = np.zeros(0, np.int64)  # ... and its frame
        self.velocity = np.zeros((0, 2))  # centre px/frame between full-size observations
        self.ref_wh = np.zeros((0, 2))  # the track's reference (full) box size

    def append(self, xyxy: np.ndarray, mean: np.ndarray, cov: np.ndarray, frame: int) -> None:
        """New tracks first seen at ``xyxy`` with Kalman state (``mean``, ``cov``)."""
        n = len(xyxy)
        self.boxes = np.concatenate([self.boxes, np.repeat(xyxy[:, None, :], HISTORY, axis=1)])
        self.mean, self.cov = np.concatenate([self.mean, mean]), np.concatenate([self.cov, cov])
        self.anchor = np.concatenate([self.anchor, xyxy])
        self.anchor_frame = np.concatenate([self.anchor_frame, np.full(n, frame, np.int64)])
        self.velocity = np.concatenate([self.velocity, np.zeros((n, 2))])
        self.ref_wh = np.concatenate([self.ref_wh, xyxy[:, 2:] - xyxy[:, :2]])

    def keep(self, keep: np.ndarray) -> None:
        """Keep the rows ``keep`` (bool mask), as the tracker does with its own."""
        self.boxes, self.mean, self.cov = self.boxes[keep], self.mean[keep], self.cov[keep]
        self.anchor, self.anchor_frame = self.anchor[keep], self.anchor_frame[keep]
        self.velocity, self.ref_wh = self.velocity[keep], self.ref_wh[keep]

    def observe(self, t_idx: np.ndarray, xyxy: np.ndarray, gaps: np.ndarray, mean: np.ndarray, cov: np.ndarray,
                frame: int) -> None:
        """Tracks ``t_idx`` were observed at ``xyxy`` in ``frame``, ``gaps`` frames after
        their last observation (Kalman state after the update: ``mean``, ``cov``). The
        velocity is measured on the box edges (:func:`edge_velocity`); a full-size
        observation moves the anchor, a partial one (shrunk by an occluder) does not."""
        previous = self.boxes[t_idx, -1]
        self.boxes[t_idx, :-1] = self.boxes[t_idx, 1:]
        self.boxes[t_idx, -1] = xyxy
        self.mean[t_idx], self.cov[t_idx] = mean, cov
        moved = edge_velocity(previous, xyxy, np.maximum(gaps, 1))
        first = self.anchor_frame[t_idx] == frame - gaps  # the second observation: no estimate yet
        self.velocity[t_idx] += np.where(first, 1.0, VELOCITY_GAIN)[:, None] * (moved - self.velocity[t_idx])
        wh = xyxy[:, 2:] - xyxy[:, :2]
        ref = np.maximum(self.ref_wh[t_idx] * SIZE_DECAY, wh)
        self.ref_wh[t_idx] = ref
        full = (wh >= FULL_SIZE * ref).all(axis=1)
        self.anchor[t_idx[full]], self.anchor_frame[t_idx[full]] = xyxy[full], frame

    def last_boxes(self, t_idx: np.ndarray) -> np.ndarray:
        """The last observed box of tracks ``t_idx`` (the recovery round matches on it)."""
        return self.boxes[t_idx, -1]

    def direction_bonus(self, t_idx: np.ndarray, det_xyxy: np.ndarray, det_scores: np.ndarray, weight: float,
                        cost: np.ndarray, threshold: float) -> np.ndarray:
        """OCM: (T, N) bonus in [-weight/2, weight/2] · score, highest where the direction
        from the track's oldest kept observation to a detection agrees with the direction
        between its observations; 0 for a track that has not moved yet, and for pairs whose
        ``cost`` is above ``threshold`` (they cannot match: the bonus only chooses between
        pairs that can)."""
        if not weight or not len(t_idx) or not len(det_xyxy):
            return np.zeros((len(t_idx), len(det_xyxy)))
        boxes = self.boxes[t_idx]
        return _direction_bonus(centres(boxes[:, 0]), centres(boxes[:, -1]), centres(np.asarray(det_xyxy, np.float64)),
                                np.asarray(det_scores, np.float64), float(weight), cost, float(threshold))

    def reid_cost(self, t_idx: np.ndarray, t_cls: np.ndarray, det_xyxy: np.ndarray, det_cls: np.ndarray,
                  frame: int, class_change_cost: float, colour: np.ndarray | None = None, max_speed: float = 0.0,
                  image_hw: tuple[int, int] = (0, 0)) -> np.ndarray:
        """(T, N) cost of re-identifying lost tracks ``t_idx`` (classes ``t_cls``) as
        detections: 1 - the share of the detection inside the track's anchor box moved on
        by its velocity (grown for the time unseen), plus a tenth of the centre distance in
        box sizes; or, with ``colour`` (colour distances as a share of the appearance
        threshold), the appearance cost where it is lower (:func:`colour_reid_cost`: within
        reach, ``max_speed`` px/frame, of where the track should be in a frame of
        ``image_hw``); plus ``class_change_cost`` across classes; 2 (no match) for a
        detection much larger than the track, and for a track whose motion has taken it
        out of the frame."""
        if not len(t_idx) or not len(det_xyxy):
            return np.zeros((len(t_idx), len(det_xyxy)))
        anchor, gap, shift = self._moved_on(t_idx, frame)
        size = anchor[:, 2:] - anchor[:, :2]
        margin = np.tile(size * np.minimum(REID_MARGIN + REID_SPREAD * gap, REID_MAX_MARGIN)[:, None], 2)
        pred = anchor + np.tile(shift, 2) + margin * np.array([-1.0, -1.0, 1.0, 1.0])
        lo = np.maximum(pred[:, None, :2], det_xyxy[None, :, :2])
        hi = np.minimum(pred[:, None, 2:], det_xyxy[None, :, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
        det_wh = det_xyxy[:, 2:] - det_xyxy[:, :2]
        det_area = np.maximum(np.prod(det_wh, axis=1), 1e-6)
        inside = inter / det_area[None, :]
        expected = centres(anchor) + shift
        dist = np.hypot(*(expected[:, None, :] - centres(det_xyxy)[None, :, :]).transpose(2, 0, 1))
        cost = 1.0 - inside + 0.1 * np.minimum(dist / np.maximum(size.max(axis=1), 1.0)[:, None], 1.0)
        if colour is not None:
            # Within reach: the object's size plus max_speed per frame unseen around where it
            # should be.
            far = dist / np.maximum(size.max(axis=1) + max_speed * gap, 1.0)[:, None]
            cost = np.minimum(cost, colour_reid_cost(colour, far))
        too_big = det_area[None, :] > REID_MAX_GROWTH * np.prod(self.ref_wh[t_idx], axis=1)[:, None]
        cost += class_change_cost * (t_cls[:, None] != det_cls[None, :])
        # None for a track whose motion took it out of the frame: it left, and an object
        # coming in at that edge (grown margins reach along it) is another one.
        h, w = image_hw
        left = (expected[:, 0] < 0) | (expected[:, 0] > w) | (expected[:, 1] < 0) | (expected[:, 1] > h) \
            if h > 0 and w > 0 else np.zeros(len(t_idx), bool)
        return np.where(too_big | left[:, None], 2.0, cost)

    def _moved_on(self, t_idx: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tracks' anchor boxes, the frames since each, and how far (x, y) their velocity
        has taken them since."""
        anchor, gap = self.anchor[t_idx], (frame - self.anchor_frame[t_idx]).astype(np.float64)
        return anchor, gap, self.velocity[t_idx] * gap[:, None]

    def reupdate(self, kf: BatchKalman, t_idx: np.ndarray, gaps: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ORU: the Kalman state of tracks ``t_idx``, re-found ``gaps`` frames after their
        last observation at ``xyxy``, replayed from that observation: predicted once per
        frame and updated with boxes on the straight line to ``xyxy`` for each frame unseen.
        Returns (mean, cov) predicted to this frame, ready for the update with ``xyxy``."""
        mean, cov = self.mean[t_idx].copy(), self.cov[t_idx].copy()
        start = self.boxes[t_idx, -1]
        for k in range(1, int(gaps.max()) + 1):
            rows = np.flatnonzero(gaps >= k)
            mean[rows], cov[rows] = kf.predict(mean[rows], cov[rows])
            rows = np.flatnonzero(gaps > k)
            if len(rows):
                frac = (k / gaps[rows])[:, None]
                virtual = start[rows] + frac * (xyxy[rows] - start[rows])
                mean[rows], cov[rows] = kf.update(mean[rows], cov[rows], xyxy_to_xyah(virtual))
        return mean, cov


@njit(cache=True, nogil=True)
def _direction_bonus(first, last, det, scores, weight, cost, threshold):  # pragma: no cover
    """OCM's bonus: weight · (π/2 - angle) / π · score, the angle between the track's
    direction (first → last observation) and the direction first → detection."""
    out = np.zeros((first.shape[0], det.shape[0]), np.float64)
    for i in range(first.shape[0]):
        tx, ty = last[i, 0] - first[i, 0], last[i, 1] - first[i, 1]
        norm = math.sqrt(tx * tx + ty * ty)
        if norm < 1e-6:
            continue  # a track that has not moved has no direction
        tx, ty = tx / norm, ty / norm
        for j in range(det.shape[0]):
            if cost[i, j] > threshold:
                continue
            dx, dy = det[j, 0] - first[i, 0], det[j, 1] - first[i, 1]
            d = max(math.sqrt(dx * dx + dy * dy), 1e-6)
            cos = min(1.0, max(-1.0, (tx * dx + ty * dy) / d))
            out[i, j] = weight * math.asin(cos) / math.pi * scores[j]
    return out


def warm_up() -> None:
    """Compile the direction kernel now (cached on disk), so no frame pays for it."""
    _direction_bonus(np.zeros((1, 2)), np.ones((1, 2)), np.zeros((1, 2)), np.ones(1), 0.2, np.zeros((1, 1)), 0.8)
