"""Instance segmentation (and detection) outputs of YOLOv5 and YOLOv8/YOLO11 models.

Steps: candidates above ``confidence`` (YOLOv5: objectness × class score; YOLOv8: class
score; the best class per anchor) and in ``class_filter`` → boxes mapped through the
letterbox to source pixels and clipped → ``min_area_ratio``/``max_area_ratio`` filter → the ``max_candidates``
highest scores → NMS per class (or class-agnostic) → ``max_detections`` → masks decoded
inside each box (``mask_decode_mode``); with ``drop_empty_masks``, detections whose mask
is empty are left out (as Ultralytics does). The heavy steps are the kernels chosen at load.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import Candidates, Kernels
from pipeline.infer.kernels.cpu import nms
from pipeline.infer.layouts import ModelLayout
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks.base import PostprocessTimings, StreamState
from pipeline.infer.tasks.masks import box_masks
from pipeline.vision.detections import Detections


def allowed_classes(class_filter: Sequence[str] | None, class_names: Sequence[str], num_classes: int) -> np.ndarray:
    """Boolean per class id; unknown names in the filter are an error naming them.

    >>> allowed_classes(["b"], ["a", "b", "c"], 3).tolist()
    [False, True, False]
    """
    allowed = np.ones(num_classes, np.bool_)
    if class_filter is None:
        return allowed
    names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    unknown = [c for c in class_filter if c not in names]
    if unknown:
        raise ValueError(f"class_filter names {unknown} are not classes of the model {names}")
    allowed[:] = False
    for c in class_filter:
        allowed[names.index(c)] = True
    return allowed


def without_empty_masks(dets: Detections) -> Detections:
    """``dets`` less the detections whose mask has no pixel (``drop_empty_masks``: like
    Ultralytics, a detection whose mask is empty is not reported); ``dets`` itself when none is.

    >>> dets = Detections([[0, 0, 2, 2], [2, 2, 4, 4]], [0.9, 0.8], [0, 1], (4, 4),
    ...                   [np.ones((2, 2), bool), np.zeros((2, 2), bool)])
    >>> without_empty_masks(dets).class_id.tolist()
    [0]
    """
    if dets.masks is None:
        return dets
    has = np.fromiter((m.any() for m in dets.masks), np.bool_, len(dets.masks))
    return dets if has.all() else dets[np.flatnonzero(has)]


def area_fits(xyxy: np.ndarray, letterbox: Letterbox, options: PostprocessOptions) -> np.ndarray | None:
    """Which boxes (source pixels) pass ``min_area_ratio``/``max_area_ratio`` of the frame, or
    None when neither is set.

    >>> from pipeline.infer.letterbox import Letterbox
    >>> lb = Letterbox.fit((100, 100), (640, 640))
    >>> boxes = np.array([[0, 0, 10, 10], [0, 0, 90, 90]], np.float32)
    >>> area_fits(boxes, lb, PostprocessOptions(max_area_ratio=0.5)).tolist()
    [True, False]
    """
    o = options
    if o.max_area_ratio is None and o.min_area_ratio is None:
        return None
    wh = xyxy[:, 2:] - xyxy[:, :2]
    area, frame = wh[:, 0] * wh[:, 1], letterbox.src_h * letterbox.src_w
    fits = np.ones(len(xyxy), np.bool_)
    if o.max_area_ratio is not None:
        fits &= area <= o.max_area_ratio * frame
    if o.min_area_ratio is not None:
        fits &= area >= o.min_area_ratio * frame
    return fits


class SegmentationDecoder:
    """Boxes, classes, scores and (with prototypes) masks cropped to their boxes."""

    def __init__(self, layout: ModelLayout, options: PostprocessOptions, class_names: Sequence[str],
                 kernels: Kernels) -> None:
        self.layout, self.options, self.kernels = layout, options, kernels
        self.task = layout.task
        self.class_names = tuple(class_names)
        self.allowed = kernels.upload(allowed_classes(options.class_filter, self.class_names, layout.num_classes))

    def decode(self, outputs: Sequence[Any], index: int, letterbox: Letterbox,
               timings: PostprocessTimings | None = None, state: StreamState | None = None) -> Detections:
        lay = self.layout
        protos = outputs[lay.protos_output][index] if lay.protos_output is not None else None
        t0 = time.perf_counter()
        kept, xyxy = self._kept(outputs[lay.detections_output][index], letterbox)
        t1 = time.perf_counter()
        masks = runs = None
        if protos is not None:
            masks, runs = box_masks(self.kernels, kept.coefficients(), xyxy, protos, letterbox, self.options)
        dets = Detections(xyxy, kept.scores, kept.classes, (letterbox.src_h, letterbox.src_w), masks,
                          class_names=self.class_names, mask_runs=runs)
        if self.options.drop_empty_masks:
            dets = without_empty_masks(dets)
        if timings is not None:
            timings.nms = (t1 - t0) * 1e3
            timings.masks = (time.perf_counter() - t1) * 1e3
        return dets

    def _kept(self, output0: Any, letterbox: Letterbox) -> tuple[Candidates, np.ndarray]:
        """The candidates NMS keeps, best first, and their boxes in source pixels."""
        candidates, boxes = self._candidates(output0, letterbox)
        keep = nms(candidates.boxes, candidates.scores, candidates.classes, np.float32(self.options.iou_threshold),
                   self.options.class_agnostic_nms, self.options.max_detections)
        return candidates.subset(keep), boxes[keep]

    def _candidates(self, output0: Any, letterbox: Letterbox) -> tuple[Candidates, np.ndarray]:
        """Candidates above the thresholds, with their boxes in source pixels, filtered by
        area and capped at ``max_candidates`` (the highest scores)."""
        o, lay = self.options, self.layout
        found = self.kernels.candidates(output0, lay.channels_first, lay.has_objectness, lay.num_classes,
                                        lay.extra_channels, o.confidence, self.allowed)
        boxes = letterbox.to_source_xyxy(found.boxes)
        fits = area_fits(boxes, letterbox, o) if len(found) else None
        if fits is not None:
            found, boxes = found.subset(fits), boxes[fits]
        if len(found) > o.max_candidates:
            top = np.argsort(-found.scores, kind="stable")[: o.max_candidates]
            found, boxes = found.subset(top), boxes[top]
        return found, boxes
