"""Recognise a YOLO model's output layout, and so its task, from output shapes and metadata.

Classic heads (candidates per anchor, NMS in vidpipe):

- ``yolov5-seg``: ``(B, A, 5+nc+nm)`` (xywh, objectness, classes, mask coefficients) and
  prototypes ``(B, nm, h, w)``; ``yolov5``: the same without masks.
- ``yolov8-seg`` (also YOLO11): ``(B, 4+nc+nm, A)`` without objectness, plus prototypes;
  ``yolov8``: the same without masks; ``yolov8-pose``: ``(B, 4+nc+K*D, A)`` with the
  ``kpt_shape`` ``[K, D]`` of the metadata (YOLOv8/11-pose).

End-to-end heads (YOLO26, YOLOv10, ``nms=True`` exports: rows are final, no NMS):
``end2end`` ``(B, R, 6)`` (xyxy in input pixels, score, class), ``end2end-seg``
``(B, R, 6+nm)`` plus prototypes, ``end2end-pose`` ``(B, R, 6+K*D)``.

Frame-level heads: ``classify`` ``(B, nc)`` probabilities; ``semantic`` ``(B, H, W)`` class
map; ``semantic-logits`` ``(B, nc, H, W)`` scores per class.

Example:
    >>> recognise([(1, 39, 8400), (1, 32, 160, 160)], num_classes=3).name
    'yolov8-seg'
    >>> recognise([(1, 25200, 85)], num_classes=80).name
    'yolov5'
    >>> recognise([(1, 300, 57)], hints=LayoutHints(end2end=True, kpt_shape=(17, 3))).task
    'pose'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import get_args

from pipeline.infer.config import LayoutName

LAYOUTS: tuple[str, ...] = get_args(LayoutName)
TASKS: dict[str, str] = {
    "yolov5-seg": "segment", "yolov8-seg": "segment", "end2end-seg": "segment",
    "yolov5": "detect", "yolov8": "detect", "end2end": "detect",
    "yolov8-pose": "pose", "end2end-pose": "pose",
    "classify": "classify", "semantic": "semantic", "semantic-logits": "semantic",
}
# What Ultralytics (and others) write in the ``task`` metadata for a semantic model.
SEMANTIC_TASKS = frozenset({"semantic", "semseg", "semantic-segment", "semantic_segment", "sem"})
KNOWN = ("YOLOv5 (B, A, 5+nc[+nm]) [+ protos], YOLOv8/11 (B, 4+nc[+nm], A) [+ protos], "
         "YOLOv8/11-pose (B, 4+nc+K*D, A) with kpt_shape, end-to-end (B, R, 6[+nm|+K*D]) [+ protos], "
         "classification (B, nc), semantic (B, H, W) or (B, nc, H, W)")


class LayoutError(ValueError):
    """The model's outputs fit none of the known layouts."""


@dataclass(frozen=True)
class LayoutHints:
    """What the model's metadata (or the configuration) says beyond its shapes."""

    task: str | None = None  # Ultralytics' task: detect, segment, pose, classify, ...
    end2end: bool = False  # an NMS-free head or an export with nms=True
    kpt_shape: tuple[int, int] | None = None  # (K, D): keypoints per detection, 2 or 3 values each


@dataclass(frozen=True)
class ModelLayout:
    name: str
    num_classes: int  # 0 where the outputs do not tell (end-to-end heads without names)
    num_masks: int  # 0 for detection models
    detections_output: int  # index of output0 among the model outputs
    protos_output: int | None
    num_keypoints: int = 0
    keypoint_dims: int = 3  # x, y[, confidence]

    @property
    def task(self) -> str:
        """``detect``, ``segment``, ``pose``, ``classify`` or ``semantic``."""
        return TASKS[self.name]

    @property
    def channels_first(self) -> bool:
        return self.name.startswith("yolov8")

    @property
    def has_objectness(self) -> bool:
        return self.name.startswith("yolov5")

    @property
    def end_to_end(self) -> bool:
        return self.name.startswith("end2end")

    @property
    def extra_channels(self) -> int:
        """Channels after the class scores: mask coefficients or keypoints."""
        return self.num_masks + self.num_keypoints * self.keypoint_dims

    @classmethod
    def of_arrays(cls, name: str, output0_shape: Sequence[int], num_masks: int) -> ModelLayout:
        """The classic layout ``name`` for the outputs of ONE image (batch axis removed):
        output 0 then, with masks, the prototypes."""
        if name not in ("yolov5-seg", "yolov8-seg", "yolov5", "yolov8"):
            raise LayoutError(f"layout must be one of yolov5-seg, yolov8-seg, yolov5, yolov8, got {name!r}")
        probe = cls(name, 0, num_masks, 0, None)
        channels = output0_shape[0] if probe.channels_first else output0_shape[1]
        nc = channels - (5 if probe.has_objectness else 4) - num_masks
        if nc < 1:
            raise LayoutError(f"output0 of shape {tuple(output0_shape)} has no class scores for layout {name!r} "
                              f"with {num_masks} masks")
        return cls(name, nc, num_masks, 0, 1 if num_masks else None)


def _dim(d: object) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def recognise(shapes: Sequence[Sequence[object]], num_classes: int | None = None, hint: str | None = None,
              hints: LayoutHints | None = None) -> ModelLayout:
    """Layout from output shapes (ints, or strings/None for dynamic axes) and metadata.

    ``num_classes`` (from the model's ``names``) disambiguates; ``hint`` forces a layout
    name and is checked against the shapes; ``hints`` carry the metadata's task,
    end-to-end flag and keypoint shape.
    """
    hints = hints or LayoutHints()
    if hint == "semantic" and (hints.task or "").lower() not in SEMANTIC_TASKS:
        hints = replace(hints, task="semantic")
    found = _candidates(shapes, num_classes, hints)
    if hint is not None:
        found = [c for c in found if c.name == hint]
        if not found:
            raise LayoutError(f"outputs {list(map(list, shapes))} do not match layout {hint!r}")
    if not found:
        if hints.task == "pose" and hints.kpt_shape is None:
            raise LayoutError("a pose model needs its keypoint shape: the metadata has no kpt_shape; "
                              "set model.kpt_shape, e.g. [17, 3]")
        expect = f" with {num_classes} classes" if num_classes else ""
        task = f", task {hints.task!r}" if hints.task else ""
        raise LayoutError(f"outputs {list(map(list, shapes))}{expect}{task} fit no known layout; known: {KNOWN}")
    return found[0]


def _candidates(shapes: Sequence[Sequence[object]], nc: int | None, hints: LayoutHints) -> list[ModelLayout]:
    """Every layout the shapes fit, the most likely first."""
    dims = [[_dim(d) for d in s] for s in shapes]
    ranks = [len(s) for s in shapes]
    if ranks == [2]:
        c = dims[0][1]
        return [ModelLayout("classify", c, 0, 0, None)] if c and (nc is None or c == nc) else []
    if ranks == [4]:
        c = dims[0][1]
        return [ModelLayout("semantic-logits", c, 0, 0, None)] if c and (nc is None or c == nc) else []
    if ranks == [3] and (hints.task or "").lower() in SEMANTIC_TASKS:
        return [ModelLayout("semantic", nc or 0, 0, 0, None)]
    three = [i for i, r in enumerate(ranks) if r == 3]
    four = [i for i, r in enumerate(ranks) if r == 4]
    if len(three) != 1 or len(four) > 1 or len(three) + len(four) != len(ranks):
        return []
    det_i, protos_i = three[0], (four[0] if four else None)
    nm = dims[protos_i][1] if protos_i is not None else 0
    if nm is None:
        raise LayoutError(f"prototype output has no fixed channel count: {list(shapes[protos_i or 0])}")
    classic = _classic(dims[det_i], nm, nc, hints, det_i, protos_i)
    end2end = _end_to_end(dims[det_i], nm, nc, hints, det_i, protos_i)
    return end2end + classic if hints.end2end else classic + end2end


def _classic(shape: list[int | None], nm: int, nc: int | None, hints: LayoutHints, det_i: int,
             protos_i: int | None) -> list[ModelLayout]:
    _, d1, d2 = shape
    k, d = hints.kpt_shape or (0, 3)
    if hints.task == "pose" and not k:
        return []  # no keypoint shape: the caller says so
    extra = nm + k * d

    def classes(c: int | None, first: int) -> int | None:
        n = None if c is None else c - first - extra
        return n if n is not None and n >= 1 and (nc is None or n == nc) else None

    # Anchors outnumber channels at usual input sizes: that tells YOLOv8 from YOLOv5 where
    # the class count does not (no names); a pose head or a known count needs no such guess.
    v8, v5 = classes(d1, 4), (None if k else classes(d2, 5))
    sure = nc is not None or k
    found = []
    if v8 is not None and (sure or d2 is None or d2 > d1):  # type: ignore[operator]
        name = "yolov8-pose" if k else "yolov8-seg" if protos_i is not None else "yolov8"
        found.append(ModelLayout(name, v8, nm, det_i, protos_i, k, d))
    if v5 is not None and (sure or d1 is None or d1 > d2):  # type: ignore[operator]
        found.append(ModelLayout("yolov5-seg" if protos_i is not None else "yolov5", v5, nm, det_i, protos_i))
    if len(found) == 2 and d1 is not None and d2 is not None and d1 > d2:
        found.reverse()
    return found


def _end_to_end(shape: list[int | None], nm: int, nc: int | None, hints: LayoutHints, det_i: int,
                protos_i: int | None) -> list[ModelLayout]:
    """Final rows ``(R, 6 + extra)``: rows outnumber columns unless the metadata says so."""
    _, rows, cols = shape
    k, d = hints.kpt_shape or (0, 3)
    if cols is None or (hints.task == "pose" and not k):
        return []
    if not hints.end2end and rows is not None and rows <= cols:
        return []
    if protos_i is not None:
        return [ModelLayout("end2end-seg", nc or 0, nm, det_i, protos_i)] if cols == 6 + nm else []
    if k and cols == 6 + k * d:
        return [ModelLayout("end2end-pose", nc or 0, 0, det_i, None, k, d)]
    return [ModelLayout("end2end", nc or 0, 0, det_i, None)] if cols == 6 and not k else []
