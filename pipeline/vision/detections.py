"""Detections of one frame as a struct of arrays, with masks kept cropped to their box.

Example:
    >>> import numpy as np
    >>> dets = Detections(
    ...     xyxy=np.array([[10, 10, 20, 30]], np.float32),
    ...     confidence=np.array([0.9], np.float32),
    ...     class_id=np.array([2]),
    ...     image_hw=(48, 64),
    ...     masks=[np.ones((20, 10), bool)],
    ...     class_names=("circle", "rectangle", "triangle"),
    ... )
    >>> len(dets), dets.category, dets.rle()[0]["size"]
    (1, ['triangle'], [48, 64])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pipeline.vision import rle as rle_codec
from pipeline.vision.classification import Classification
from pipeline.vision.geometry import mask_boxes
from pipeline.vision.semantic import SemanticSegments


@dataclass
class Detections:
    """Boxes ``xyxy`` (N, 4) in source-image pixels, ``confidence`` (N,), ``class_id`` (N,),
    ``tracker_id`` (N,) (-1: none) and optional ``masks``: N boolean arrays, each cropped to
    ``mask_boxes(xyxy, image_hw)`` of its detection; optional ``keypoints`` (N, K, 3): x, y
    and confidence of each keypoint in source pixels (pose models). ``mask_runs``, when the
    mask kernels made them in the same pass, are each mask's COCO run lengths over the whole
    frame (column-major, zeros first): :meth:`rle` then encodes them without reading a mask
    (they describe ``masks`` as built: replace both, or give ``mask_runs=None``).

    Frame-level answers ride along: ``classification`` (classification models; no boxes)
    and ``semantic`` (semantic segmentation models; no boxes)."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    image_hw: tuple[int, int]
    masks: list[np.ndarray] | None = None
    tracker_id: np.ndarray = None  # type: ignore[assignment]  # None: -1 (untracked) for every detection
    class_names: Sequence[str] = ()
    data: dict[str, np.ndarray] = field(default_factory=dict)
    keypoints: np.ndarray | None = None
    keypoint_names: Sequence[str] = ()
    classification: Classification | None = None
    semantic: SemanticSegments | None = None
    mask_runs: list[np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        n = len(self.xyxy)
        self.confidence = np.asarray(self.confidence, np.float32).reshape(n)
        self.class_id = np.asarray(self.class_id, np.int64).reshape(n)
        if self.tracker_id is None:
            self.tracker_id = np.full(n, -1, np.int64)
        else:
            self.tracker_id = np.asarray(self.tracker_id, np.int64).reshape(n)
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"{len(self.masks)} masks for {n} detections")
        if self.mask_runs is not None and (self.masks is None or len(self.mask_runs) != n):
            raise ValueError(f"run lengths for {len(self.mask_runs)} masks, with {n} detections"
                             f" and {'no' if self.masks is None else len(self.masks)} masks")
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, np.float32)
            if self.keypoints.ndim != 3 or self.keypoints.shape[0] != n or self.keypoints.shape[2] != 3:
                raise ValueError(f"keypoints of shape {self.keypoints.shape} for {n} detections: expected (N, K, 3)")
        self.image_hw = (int(self.image_hw[0]), int(self.image_hw[1]))

    @classmethod
    def empty(cls, image_hw: tuple[int, int], with_masks: bool = True, class_names: Sequence[str] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   image_hw, [] if with_masks else None, class_names=class_names)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Detections:
        """A subset: an int, a slice, an index array or a boolean array."""
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        masks = None if self.masks is None else [self.masks[i] for i in idx]
        return Detections(
            self.xyxy[idx], self.confidence[idx], self.class_id[idx], self.image_hw, masks,
            self.tracker_id[idx], self.class_names, {k: v[idx] for k, v in self.data.items()},
            None if self.keypoints is None else self.keypoints[idx], self.keypoint_names,
            self.classification, self.semantic, None if self.mask_runs is None else [self.mask_runs[i] for i in idx],
        )

    @property
    def category(self) -> list[str]:
        names = self.class_names
        return [names[c] if 0 <= c < len(names) else str(c) for c in self.class_id.tolist()]

    @property
    def mask_boxes(self) -> np.ndarray:
        return mask_boxes(self.xyxy, self.image_hw)

    def rle(self) -> list[dict]:
        """COCO compressed RLE of each full-frame mask (computed once: several sinks share it)."""
        if self.masks is None:
            raise ValueError("these detections carry no masks")
        cached = self.__dict__.get("_rle")
        if cached is None or len(cached) != len(self.masks):
            h, w = self.image_hw
            if self.mask_runs is not None:
                cached = [rle_codec.encode_counts(r, h, w) for r in self.mask_runs]
            else:
                boxes = self.mask_boxes
                cached = [rle_codec.encode_crop(m, int(b[0]), int(b[1]), h, w) for m, b in zip(self.masks, boxes)]
            self.__dict__["_rle"] = cached
        return cached

    def polygons(self, precision: float = 1.0) -> list[list[np.ndarray]]:
        """Per detection, its contours as (K, 2) int arrays in source pixels: outer
        boundaries and holes (holes kept, as separate rings). ``precision`` is the
        Douglas-Peucker tolerance in pixels (lower = more detail, 0 = every vertex)."""
        if self.masks is None:
            raise ValueError("these detections carry no masks")
        out: list[list[np.ndarray]] = []
        for m, b in zip(self.masks, self.mask_boxes):
            if m.size == 0 or not m.any():
                out.append([])
                continue
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE,
                                           offset=(int(b[0]), int(b[1])))
            rings = []
            for c in contours:
                if precision > 0:
                    c = cv2.approxPolyDP(c, precision, True)
                rings.append(c.reshape(-1, 2).astype(np.int32))
            out.append(rings)
        return out

    def full_masks(self) -> np.ndarray:
        """(N, H, W) boolean full-frame masks. Memory grows with N × H × W: use sparingly."""
        h, w = self.image_hw
        full = np.zeros((len(self), h, w), bool)
        if self.masks is not None:
            for i, (m, b) in enumerate(zip(self.masks, self.mask_boxes)):
                full[i, b[1]:b[3], b[0]:b[2]] = m
        return full

    def to_supervision(self, masks: bool = True):
        """``supervision.Detections`` with full-frame boolean masks (on demand); ``data``
        holds ``class_name`` (when names are known) and, for a pose model, ``keypoints``
        (N, K, 3), so a subset of the detections keeps its keypoints."""
        import supervision as sv

        data: dict[str, Any] = {"class_name": np.array(self.category, dtype=object)} if len(self.class_names) else {}
        if self.keypoints is not None:
            data["keypoints"] = self.keypoints
        data.update(self.data)
        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32),
            mask=self.full_masks() if masks and self.masks is not None else None,
            confidence=self.confidence,
            class_id=self.class_id.astype(int),
            tracker_id=None if (self.tracker_id < 0).all() and len(self) else self.tracker_id.astype(int),
            data=data,
        )

    def to_supervision_keypoints(self, min_confidence: float = 0.0) -> Any:
        """``supervision.KeyPoints`` of a pose model's detections: ``xy`` (N, K, 2),
        ``keypoint_confidence`` (N, K), ``class_id`` and ``detection_confidence`` (N,);
        ``visible`` marks keypoints whose confidence is above ``min_confidence``.
        ``KeyPoints.empty()`` when the detections carry none."""
        import supervision as sv

        if self.keypoints is None:
            return sv.KeyPoints.empty()
        kp = self.keypoints
        return sv.KeyPoints(xy=kp[..., :2].astype(np.float32), class_id=self.class_id.astype(int),
                            keypoint_confidence=kp[..., 2].astype(np.float32),
                            detection_confidence=self.confidence.astype(np.float32), visible=kp[..., 2] > min_confidence,
                            data={"class_name": np.array(self.category, dtype=object)} if len(self.class_names) else {})

    def to_supervision_classifications(self) -> Any:
        """``supervision.Classifications`` of a classification model's answer (top-k class
        ids and confidences, best first); None when the detections carry none."""
        import supervision as sv

        if self.classification is None:
            return None
        return sv.Classifications(class_id=self.classification.class_id.astype(int),
                                  confidence=self.classification.confidence.astype(np.float32))
