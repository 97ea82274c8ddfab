"""What the annotated video draws for each task beyond boxes and masks: a pose model's
keypoints and skeleton, a classification model's top class, a semantic segmentation
model's class overlay (supervision's palette, so a class keeps its colour everywhere).

Example:
    >>> import numpy as np
    >>> from pipeline.vision.classification import Classification
    >>> image = np.zeros((48, 160, 3), np.uint8)
    >>> draw_classification(image, Classification([1], [0.87], ("cat", "dog")))
    >>> bool(image.any())
    True
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pipeline.vision.classification import Classification
from pipeline.vision.detections import Detections
from pipeline.vision.semantic import SemanticSegments

#: COCO's 17-keypoint person skeleton, as pairs of 0-based keypoint indices.
COCO17_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)
SEMANTIC_OPACITY = 0.45


def keypoint_annotators() -> dict[str, Any]:
    """supervision's edge (COCO-17 skeleton; supervision numbers keypoints from 1) and
    vertex annotators."""
    import supervision as sv

    edges = [(a + 1, b + 1) for a, b in COCO17_SKELETON]
    return {"edges": sv.EdgeAnnotator(color=sv.Color.GREEN, thickness=2, edges=edges),
            "vertices": sv.VertexAnnotator(color=sv.Color.RED, radius=4)}


def draw_keypoints(image: np.ndarray, dets: Detections, annotators: dict[str, Any], min_confidence: float) -> np.ndarray:
    """Keypoints above ``min_confidence`` as dots; joined by the COCO skeleton when there
    are 17 of them (other layouts have no known edges: points only)."""
    if dets.keypoints is None or not len(dets):
        return image
    kp = dets.to_supervision_keypoints(min_confidence)
    xy = kp.xy.copy()
    xy[~kp.visible] = np.nan  # supervision skips non-finite points (its vertex annotator ignores ``visible``)
    kp.xy = xy
    if xy.shape[1] == 17:
        image = annotators["edges"].annotate(image, kp)
    return annotators["vertices"].annotate(image, kp)


def draw_classification(image: np.ndarray, classification: Classification) -> None:
    """The top class and its confidence on a dark band at the top left (in place)."""
    top = classification.top
    if top is None:
        return
    text = f"{top[0]} {top[1]:.2f}"
    scale, thickness = 0.6, 1
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(image, (0, 0), (w + 12, h + base + 12), (32, 32, 32), cv2.FILLED)
    cv2.putText(image, text, (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def draw_semantic(image: np.ndarray, semantic: SemanticSegments, opacity: float = SEMANTIC_OPACITY) -> None:
    """Each reported class's pixels blended with its palette colour (in place); a class
    map of another size than the frame is scaled to it (nearest)."""
    import supervision as sv

    class_map = semantic.class_map
    h, w = image.shape[:2]
    if class_map.shape != (h, w):
        class_map = cv2.resize(class_map.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    palette = sv.ColorPalette.DEFAULT
    ids = semantic.class_ids.tolist()
    if not ids:
        return
    lut = np.array([palette.by_idx(c).as_bgr() for c in ids], np.float32)
    index = np.searchsorted(np.asarray(ids), class_map)  # position of each pixel's class among those reported
    index = np.clip(index, 0, len(ids) - 1)
    reported = np.asarray(ids)[index] == class_map
    pixels = image[reported].astype(np.float32)
    image[reported] = (pixels * (1 - opacity) + lut[index[reported]] * opacity).astype(np.uint8)
