"""Keypoints carried by a track onto frames without inference: each track keeps the
keypoints of its last matched detection and the box they were seen in; on a carried
frame they move with the track's predicted box (translated and scaled with it).

Example:
    >>> kp = np.array([[[10, 10, 0.9], [20, 30, 0.5]]], np.float32)
    >>> move_keypoints(kp, np.array([[10, 10, 20, 30]]), np.array([[15, 10, 35, 50]]))[0].astype(float).round(2).tolist()
    [[15.0, 10.0, 0.9], [35.0, 50.0, 0.5]]
"""

from __future__ import annotations

import numpy as np

#: The smallest box side keypoints are scaled from (a degenerate box would divide by 0).
MIN_SIDE = 1e-3


def move_keypoints(keypoints: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(T, K, 3) keypoints seen in boxes ``src`` (T, 4) mapped into boxes ``dst`` (T, 4):
    each keeps its place relative to its box; confidences unchanged."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    scale = (dst[:, 2:] - dst[:, :2]) / np.maximum(src[:, 2:] - src[:, :2], MIN_SIDE)  # (T, 2)
    out = np.array(keypoints, np.float32, copy=True)
    out[..., :2] = (dst[:, None, :2] + (keypoints[..., :2] - src[:, None, :2]) * scale[:, None, :]).astype(np.float32)
    return out


def gather(per_track: list[np.ndarray | None], boxes: list[np.ndarray | None], show: np.ndarray,
           pred: np.ndarray) -> np.ndarray | None:
    """(len(show), K, 3) keypoints of the tracks ``show`` moved into their predicted boxes
    ``pred``; a track without keypoints gets zeros (confidence 0). None when none has any."""
    chosen = [per_track[i] for i in show.tolist()]
    k = max((len(kp) for kp in chosen if kp is not None), default=0)
    if not k:
        return None
    out = np.zeros((len(chosen), k, 3), np.float32)
    src = np.array(pred, np.float64, copy=True)
    for j, i in enumerate(show.tolist()):
        kp, box = per_track[i], boxes[i]
        if kp is not None and box is not None and len(kp) == k:
            out[j] = kp
            src[j] = box
    return move_keypoints(out, src, pred)
