"""Keypoints of pose heads: from model-input pixels to source pixels, and their names.

Example:
    >>> import numpy as np
    >>> g = Letterbox.fit((720, 1280), (640, 640))
    >>> k = np.array([[[320, 320, 0.75], [0, 140, 0.25]]], np.float32)
    >>> keypoints_to_source(k, g, 0.5).tolist()
    [[[640.0, 360.0, 0.75], [0.0, 0.0, 0.0]]]
"""

from __future__ import annotations

import numpy as np

from pipeline.infer.letterbox import Letterbox

COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")


def keypoints_to_source(kpts: np.ndarray, letterbox: Letterbox, min_confidence: float = 0.0) -> np.ndarray:
    """(N, K, D) keypoints in input pixels (D = 2: x, y; 3: x, y, confidence) → (N, K, 3)
    float32 in source pixels, clipped to the image as Ultralytics does. A keypoint below
    ``min_confidence`` gets confidence 0 (absent), as Roboflow leaves it out; D = 2 heads
    give confidence 1."""
    n, k, d = kpts.shape
    out = np.empty((n, k, 3), np.float32)
    out[..., 0] = (kpts[..., 0] - letterbox.pad_x) / letterbox.scale_x
    out[..., 1] = (kpts[..., 1] - letterbox.pad_y) / letterbox.scale_y
    np.clip(out[..., 0], 0, letterbox.src_w, out=out[..., 0])
    np.clip(out[..., 1], 0, letterbox.src_h, out=out[..., 1])
    if d >= 3:
        out[..., 2] = kpts[..., 2]
        if min_confidence > 0:
            out[..., 2][out[..., 2] < min_confidence] = 0.0
    else:
        out[..., 2] = 1.0
    return out


def default_keypoint_names(k: int) -> tuple[str, ...]:
    """COCO's names for 17 keypoints; otherwise none (keypoints are then known by index)."""
    return COCO_KEYPOINTS if k == len(COCO_KEYPOINTS) else ()
