"""``visualize_predictions``: the image with its predictions drawn, as a base64 JPEG.

Drawn as the annotated-video sink draws (masks blended in their boxes, boxes, labels,
keypoints and skeletons, a classification's top class, semantic overlays: :mod:`sinks.draw`).
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

from pipeline.vision.detections import Detections
from sinks.draw import draw_classification, draw_keypoints, draw_semantic, keypoint_annotators
from sinks.video import AnnotatedVideoSink


def annotate(image: np.ndarray, dets: Detections, labels: bool = True, stroke: int = 2, masks: bool = True) -> np.ndarray:
    """A copy of ``image`` (BGR) with ``dets`` drawn."""
    import supervision as sv

    out = image.copy()
    if dets.semantic is not None:
        draw_semantic(out, dets.semantic)
    if dets.classification is not None:
        draw_classification(out, dets.classification)
    if len(dets) == 0:
        return out
    if masks and dets.masks is not None:
        AnnotatedVideoSink.draw_masks_cropped(out, dets)
    sv_dets = dets.to_supervision(masks=False)
    out = sv.BoxAnnotator(thickness=stroke).annotate(out, sv_dets)
    if labels:
        texts = [f"{name} {s:.2f}" for name, s in zip(dets.category, dets.confidence.tolist())]
        out = sv.LabelAnnotator(text_scale=0.5, text_padding=4).annotate(out, sv_dets, labels=texts)
    return draw_keypoints(out, dets, keypoint_annotators(), 0.0)


def visualization(image: np.ndarray, dets: Detections, labels: bool = True, stroke: int = 2, masks: bool = True) -> str:
    """The annotated image as base64 JPEG (Roboflow's ``visualization`` field)."""
    ok, data = cv2.imencode(".jpg", annotate(image, dets, labels, stroke, masks), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:  # pragma: no cover - a uint8 BGR image always encodes
        raise ValueError("could not encode the visualisation")
    return base64.b64encode(data.tobytes()).decode("ascii")
