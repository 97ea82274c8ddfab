"""What the encoder reads from a result: structural views, so the wire layer never imports
the vision layer. ``pipeline.vision``'s ``Detections`` and ``Result`` satisfy them as they
are (read-only properties: any attribute or property of a compatible type fits).

Example:
    >>> import numpy as np
    >>> class Boxes:   # the least a DetectionsView needs, for a test double
    ...     xyxy = np.zeros((0, 4)); confidence = np.zeros(0); class_id = np.zeros(0, np.int64)
    ...     tracker_id = None; masks = None; mask_boxes = np.zeros((0, 4), np.int64); category = []
    ...     def __len__(self): return 0
    ...     def rle(self): return []
    ...     def polygons(self, precision=1.0): return []
    >>> isinstance(Boxes(), DetectionsView)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy.typing as npt


@runtime_checkable
class ClassificationView(Protocol):
    """A classification model's answer: ``class_id`` (k,), ``confidence`` (k,) and
    ``category`` names, best first."""

    @property
    def class_id(self) -> npt.NDArray[Any]: ...

    @property
    def confidence(self) -> npt.NDArray[Any]: ...

    @property
    def category(self) -> Sequence[str]: ...


@runtime_checkable
class SemanticView(Protocol):
    """A semantic segmentation model's answer: ``class_map`` (H, W), the classes present
    (``class_ids``, ``category``, ``share`` of the frame), all ``class_names`` of the
    model, an optional per-pixel ``confidence`` and one full-frame COCO RLE per class."""

    @property
    def class_map(self) -> npt.NDArray[Any]: ...

    @property
    def class_ids(self) -> npt.NDArray[Any]: ...

    @property
    def share(self) -> npt.NDArray[Any]: ...

    @property
    def category(self) -> Sequence[str]: ...

    @property
    def class_names(self) -> Sequence[str]: ...

    @property
    def confidence(self) -> npt.NDArray[Any] | None: ...

    def rle(self) -> Sequence[Mapping[str, Any]]: ...


@runtime_checkable
class DetectionsView(Protocol):
    """Detections of one frame as arrays: ``xyxy`` (N, 4) source pixels, ``confidence``
    (N,), ``class_id`` (N,), ``tracker_id`` (N,) or None (-1: no track), optional
    ``masks`` (each cropped to its row of ``mask_boxes``) and per-detection ``category``.

    Optional attributes, read when present (older views need not have them):
    ``keypoints`` (N, K, 3) x/y/confidence and ``keypoint_names`` (pose models),
    ``classification`` (a :class:`ClassificationView`) and ``semantic`` (a
    :class:`SemanticView`), each None when the model does not give one."""

    @property
    def xyxy(self) -> npt.NDArray[Any]: ...

    @property
    def confidence(self) -> npt.NDArray[Any]: ...

    @property
    def class_id(self) -> npt.NDArray[Any]: ...

    @property
    def tracker_id(self) -> npt.NDArray[Any] | None: ...

    @property
    def masks(self) -> Sequence[npt.NDArray[Any]] | None: ...

    @property
    def mask_boxes(self) -> npt.NDArray[Any]: ...

    @property
    def category(self) -> Sequence[str]: ...

    def __len__(self) -> int: ...

    def rle(self) -> Sequence[Mapping[str, Any]]:
        """COCO compressed RLE (``size``, ``counts``) of each full-frame mask."""
        ...

    def polygons(self, precision: float = ...) -> Sequence[Sequence[npt.NDArray[Any]]]:
        """Per detection, its contours as (K, 2) arrays in source pixels."""
        ...


@runtime_checkable
class ResultView(Protocol):
    """One frame's result: envelope fields and its :class:`DetectionsView`."""

    @property
    def stream_id(self) -> str: ...

    @property
    def frame_index(self) -> int: ...

    @property
    def pts(self) -> float | None: ...

    @property
    def captured_at(self) -> float: ...

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def model(self) -> str: ...

    @property
    def detections(self) -> DetectionsView: ...

    @property
    def timings(self) -> Mapping[str, float]: ...

    @property
    def latency_ms(self) -> float: ...

    @property
    def drops(self) -> Mapping[str, int]: ...

    @property
    def inferred(self) -> bool: ...

    @property
    def gap(self) -> bool: ...

    @property
    def stream_state(self) -> str: ...

    @property
    def source_path(self) -> str | None:
        """The file the frame came from (image folders); None for video."""
        ...
