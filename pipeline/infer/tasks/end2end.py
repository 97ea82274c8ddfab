"""End-to-end heads (YOLO26, YOLOv10, exports with ``nms=True``): ``(B, R, 6+extra)``.

Each row is final: xyxy in input pixels, score, class, then mask coefficients (with a
prototype output) or keypoints. No NMS: rows at or above ``confidence`` and in
``class_filter`` are kept best first, area-filtered and capped at ``max_detections``; boxes
map through the letterbox to source pixels; masks decode through the kernels (every
``mask_decode_mode``), keypoints as for classic pose heads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import Kernels
from pipeline.infer.layouts import ModelLayout
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks.base import PostprocessTimings, StreamState, host
from pipeline.infer.tasks.keypoints import keypoints_to_source
from pipeline.infer.tasks.masks import box_masks
from pipeline.infer.tasks.segmentation import allowed_classes, area_fits, without_empty_masks
from pipeline.vision.detections import Detections


class EndToEndDecoder:
    """Final rows → Detections (with masks or keypoints where the head gives them)."""

    def __init__(self, layout: ModelLayout, options: PostprocessOptions, class_names: Sequence[str],
                 kernels: Kernels, keypoint_names: Sequence[str] = ()) -> None:
        self.layout, self.options, self.kernels = layout, options, kernels
        self.task = layout.task
        self.class_names = tuple(class_names)
        self.keypoint_names = tuple(keypoint_names)
        nc = len(self.class_names)
        # Without names the head does not say how many classes it has: no filter to apply.
        self.allowed = allowed_classes(options.class_filter, self.class_names, nc) if nc else None

    def decode(self, outputs: Sequence[Any], index: int, letterbox: Letterbox,
               timings: PostprocessTimings | None = None, state: StreamState | None = None) -> Detections:
        lay = self.layout
        t0 = time.perf_counter()
        rows = host(outputs[lay.detections_output][index])
        rows, xyxy = self._rows(rows, letterbox)
        t1 = time.perf_counter()
        masks = keypoints = runs = None
        if lay.protos_output is not None:
            masks, runs = box_masks(self.kernels, rows[:, 6:], xyxy, outputs[lay.protos_output][index], letterbox,
                                    self.options)
        elif lay.num_keypoints:
            raw = rows[:, 6:].reshape(len(rows), lay.num_keypoints, lay.keypoint_dims)
            keypoints = keypoints_to_source(raw, letterbox, self.options.keypoint_confidence)
        dets = Detections(xyxy, rows[:, 4], rows[:, 5].astype(np.int64), (letterbox.src_h, letterbox.src_w), masks,
                          class_names=self.class_names, keypoints=keypoints, keypoint_names=self.keypoint_names,
                          mask_runs=runs)
        if self.options.drop_empty_masks:
            dets = without_empty_masks(dets)
        if timings is not None:
            timings.nms, timings.masks = (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3
        return dets

    def _rows(self, rows: np.ndarray, letterbox: Letterbox) -> tuple[np.ndarray, np.ndarray]:
        """Rows that pass the filters, best first (stable), and their boxes in source pixels."""
        o = self.options
        keep = rows[:, 4] >= o.confidence
        if self.allowed is not None:
            cls = rows[:, 5].astype(np.int64)
            inside = (cls >= 0) & (cls < len(self.allowed))
            keep &= inside & self.allowed[np.where(inside, cls, 0)]
        rows = rows[keep]
        xyxy = letterbox.to_source_xyxy(rows[:, :4])
        fits = area_fits(xyxy, letterbox, o)
        if fits is not None:
            rows, xyxy = rows[fits], xyxy[fits]
        order = np.argsort(-rows[:, 4], kind="stable")[: o.max_detections]
        return np.ascontiguousarray(rows[order], np.float32), xyxy[order]
