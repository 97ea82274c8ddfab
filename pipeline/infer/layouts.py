"""Recognise a YOLO model's output layout from its output shapes and metadata.

- ``yolov5-seg``: ``(B, A, 5+nc+nm)`` (xywh, objectness, classes, mask coefficients) and
  prototypes ``(B, nm, h, w)``; ``yolov5``: the same without masks.
- ``yolov8-seg`` (also YOLO11): ``(B, 4+nc+nm, A)`` without objectness, plus prototypes;
  ``yolov8``: the same without masks.

Example:
    >>> recognise([(1, 39, 8400), (1, 32, 160, 160)], num_classes=3).name
    'yolov8-seg'
    >>> recognise([(1, 25200, 85)], num_classes=80).name
    'yolov5'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from pipeline.infer.config import LayoutName

LAYOUTS: tuple[str, ...] = get_args(LayoutName)


class LayoutError(ValueError):
    """The model's outputs fit none of the known layouts."""


@dataclass(frozen=True)
class ModelLayout:
    name: str
    num_classes: int
    num_masks: int  # 0 for detection models
    detections_output: int  # index of output0 among the model outputs
    protos_output: int | None

    @property
    def channels_first(self) -> bool:
        return self.name.startswith("yolov8")

    @property
    def has_objectness(self) -> bool:
        return self.name.startswith("yolov5")

    @classmethod
    def of_arrays(cls, name: str, output0_shape: Sequence[int], num_masks: int) -> ModelLayout:
        """The layout ``name`` for the outputs of ONE image (batch axis removed): output 0
        then, with masks, the prototypes."""
        if name not in LAYOUTS:
            raise LayoutError(f"layout must be one of {LAYOUTS}, got {name!r}")
        probe = cls(name, 0, num_masks, 0, None)
        channels = output0_shape[0] if probe.channels_first else output0_shape[1]
        nc = channels - (5 if probe.has_objectness else 4) - num_masks
        if nc < 1:
            raise LayoutError(f"output0 of shape {tuple(output0_shape)} has no class scores for layout {name!r} "
                              f"with {num_masks} masks")
        return cls(name, nc, num_masks, 0, 1 if num_masks else None)


def _dim(d: object) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


def recognise(shapes: Sequence[Sequence[object]], num_classes: int | None = None, hint: str | None = None) -> ModelLayout:
    """Layout from output shapes (ints, or strings/None for dynamic axes).

    ``num_classes`` (from the model's ``names``) disambiguates; ``hint`` forces a layout
    name and is checked against the shapes.
    """
    three = [i for i, s in enumerate(shapes) if len(s) == 3]
    four = [i for i, s in enumerate(shapes) if len(s) == 4]
    if len(three) != 1 or len(four) > 1:
        raise LayoutError(
            f"expected one (B, C, A) or (B, A, C) output and at most one prototype output, got shapes {list(map(list, shapes))}"
        )
    det_i = three[0]
    protos_i = four[0] if four else None
    nm = _dim(shapes[protos_i][1]) if protos_i is not None else 0
    if protos_i is not None and nm is None:
        raise LayoutError(f"prototype output has no fixed channel count: {list(shapes[protos_i])}")
    _, d1, d2 = (_dim(d) for d in shapes[det_i])
    masks = nm or 0

    def fits_v8(c: int | None) -> bool:
        return c is not None and (c - 4 - masks == num_classes if num_classes else c - 4 - masks >= 1)

    def fits_v5(c: int | None) -> bool:
        return c is not None and (c - 5 - masks == num_classes if num_classes else c - 5 - masks >= 1)

    candidates: list[tuple[str, int]] = []
    if d1 is not None and fits_v8(d1) and (d2 is None or d2 > d1):
        candidates.append(("yolov8", d1 - 4 - masks))
    if d2 is not None and fits_v5(d2) and (d1 is None or d1 > d2):
        candidates.append(("yolov5", d2 - 5 - masks))
    suffix = "-seg" if protos_i is not None else ""
    names = [(base + suffix, nc) for base, nc in candidates]
    if hint is not None:
        names = [(n, nc) for n, nc in names if n == hint]
        if not names:
            raise LayoutError(f"outputs {list(map(list, shapes))} do not match layout {hint!r}")
    if not names:
        expect = f" with {num_classes} classes" if num_classes else ""
        raise LayoutError(
            f"outputs {list(map(list, shapes))} match neither YOLOv5 (B, A, 5+nc+{nm}) nor YOLOv8 (B, 4+nc+{nm}, A){expect}"
        )
    name, nc = names[0]
    return ModelLayout(name, nc, nm or 0, det_i, protos_i)
