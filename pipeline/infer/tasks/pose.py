"""Pose outputs of YOLOv8/YOLO11-pose heads: ``(B, 4+nc+K*D, A)``.

Candidates, boxes and NMS exactly as for detection (the kernels read the keypoint channels
where segmentation heads have mask coefficients, so only the kept detections' keypoints are
gathered); then the keypoints map through the letterbox to source pixels.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import Kernels
from pipeline.infer.layouts import ModelLayout
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks.base import PostprocessTimings, StreamState
from pipeline.infer.tasks.keypoints import keypoints_to_source
from pipeline.infer.tasks.segmentation import SegmentationDecoder
from pipeline.vision.detections import Detections


class PoseDecoder(SegmentationDecoder):
    """Boxes, classes, scores and keypoints (N, K, 3) in source pixels."""

    def __init__(self, layout: ModelLayout, options: PostprocessOptions, class_names: Sequence[str],
                 kernels: Kernels, keypoint_names: Sequence[str] = ()) -> None:
        super().__init__(layout, options, class_names, kernels)
        self.keypoint_names = tuple(keypoint_names)

    def decode(self, outputs: Sequence[Any], index: int, letterbox: Letterbox,
               timings: PostprocessTimings | None = None, state: StreamState | None = None) -> Detections:
        lay = self.layout
        t0 = time.perf_counter()
        kept, xyxy = self._kept(outputs[lay.detections_output][index], letterbox)
        raw = kept.coefficients().reshape(len(kept), lay.num_keypoints, lay.keypoint_dims)
        keypoints = keypoints_to_source(raw, letterbox, self.options.keypoint_confidence)
        if timings is not None:
            timings.nms, timings.masks = (time.perf_counter() - t0) * 1e3, 0.0
        return Detections(xyxy, kept.scores, kept.classes, (letterbox.src_h, letterbox.src_w), None,
                          class_names=self.class_names, keypoints=keypoints, keypoint_names=self.keypoint_names)
