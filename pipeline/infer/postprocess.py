"""Raw YOLO outputs of one image → :class:`Detections` in source pixels, with masks.

Steps: candidates above ``confidence`` (YOLOv5: objectness × class score; YOLOv8: class
score; the best class per anchor) and in ``class_filter`` → boxes mapped through the
letterbox to source pixels and clipped → ``max_area_ratio`` filter → the ``max_candidates``
highest scores → NMS per class (or class-agnostic) → ``max_detections`` → masks decoded
inside each box (``mask_decode_mode``). The heavy steps are Numba kernels (kernels.py).

Example:
    >>> import numpy as np
    >>> out = np.zeros((4 + 3 + 32, 10), np.float32)  # YOLOv8-seg, 10 anchors
    >>> out[:4, 0] = [320, 320, 100, 50]; out[4 + 1, 0] = 0.9
    >>> protos = np.ones((32, 160, 160), np.float32)
    >>> out[7:, 0] = 0.1
    >>> dets = postprocess_segmentation(out, protos, layout="yolov8-seg",
    ...     input_hw=(640, 640), source_hw=(720, 1280))
    >>> dets.xyxy.round().tolist(), dets.class_id.tolist(), int(dets.masks[0].all())
    ([[540.0, 310.0, 740.0, 410.0]], [1], 1)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.infer.kernels import cpu as kernels
from pipeline.infer.letterbox import Letterbox
from pipeline.vision.detections import Detections
from pipeline.vision.geometry import mask_boxes


@dataclass(frozen=True)
class PostprocessOptions:
    """Every option of the post-processing, as in Roboflow's instance segmentation block."""

    confidence: float = 0.4
    iou_threshold: float = 0.3
    class_agnostic_nms: bool = False
    max_detections: int = 300
    max_candidates: int = 3000
    class_filter: tuple[str, ...] | None = None
    mask_decode_mode: str = "accurate"
    tradeoff_factor: float = 0.5
    max_area_ratio: float | None = None
    device: str = "cpu"  # cuda: candidate selection and masks on the GPU (kernels_cuda.py)

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.mask_decode_mode not in kernels.MASK_MODES:
            raise ValueError(f"mask_decode_mode must be one of {tuple(kernels.MASK_MODES)}, got {self.mask_decode_mode!r}")
        if not 0.0 <= self.tradeoff_factor <= 1.0:
            raise ValueError(f"tradeoff_factor must be in [0, 1], got {self.tradeoff_factor}")


@dataclass
class PostprocessTimings:
    """Milliseconds spent in each step of the last call."""

    nms: float = 0.0
    masks: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def allowed_classes(class_filter: Sequence[str] | None, class_names: Sequence[str], num_classes: int) -> np.ndarray:
    """Boolean per class id; unknown names in the filter are an error naming them."""
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


def postprocess_segmentation(
    output0: np.ndarray,
    protos: np.ndarray | None,
    layout: str,
    input_hw: tuple[int, int],
    source_hw: tuple[int, int],
    confidence: float = 0.4,
    iou_threshold: float = 0.3,
    class_agnostic_nms: bool = False,
    max_detections: int = 300,
    max_candidates: int = 3000,
    class_filter: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    mask_decode_mode: str = "accurate",
    tradeoff_factor: float = 0.5,
    max_area_ratio: float | None = None,
    letterbox: Letterbox | None = None,
    allowed: np.ndarray | None = None,
    timings: PostprocessTimings | None = None,
    device: str = "cpu",
) -> Detections:
    """Decode the raw outputs of ONE image (batch axis removed). ``protos`` is None for
    detection layouts (``yolov5``, ``yolov8``). ``letterbox`` and ``allowed`` may be passed
    precomputed by the pipeline; users pass ``input_hw``, ``source_hw`` and names.
    ``device="cuda"``: ``output0`` and ``protos`` are device arrays (kernels_cuda.to_device)."""
    channels_first = layout.startswith("yolov8")
    has_obj = layout.startswith("yolov5")
    nm = 0 if protos is None else protos.shape[0]
    channels = output0.shape[0] if channels_first else output0.shape[1]
    nc = channels - (5 if has_obj else 4) - nm
    if nc < 1:
        raise ValueError(f"output0 of shape {output0.shape} has no class scores for layout {layout!r} with {nm} masks")
    names = tuple(class_names) if class_names else ()
    geometry = letterbox or Letterbox.fit(source_hw, input_hw)
    if allowed is None:
        allowed = allowed_classes(class_filter, names, nc)
    on_gpu = device == "cuda"
    t0 = time.perf_counter()
    if on_gpu:  # only the candidates' rows (box + mask coefficients) come to the host
        from pipeline.infer.kernels import cuda as kernels_cuda

        idx, scores, classes, rows = kernels_cuda.select_candidates(output0, channels_first, has_obj, nc, confidence,
                                                                    allowed, nm)
        boxes_in = kernels.gather_boxes(rows, False, np.arange(len(idx), dtype=np.int64))
    else:
        idx, scores, classes = kernels.select_candidates(output0, channels_first, has_obj, nc, np.float32(confidence), allowed)
        boxes_in = kernels.gather_boxes(output0, channels_first, idx)
    pos = np.arange(len(idx))  # each candidate's row in ``rows`` (GPU), through the filters below
    boxes_src = geometry.to_source_xyxy(boxes_in)
    if max_area_ratio is not None and len(idx):
        wh = boxes_src[:, 2:] - boxes_src[:, :2]
        small = wh[:, 0] * wh[:, 1] <= max_area_ratio * geometry.src_h * geometry.src_w
        idx, scores, classes, boxes_in, boxes_src, pos = (a[small] for a in (idx, scores, classes, boxes_in, boxes_src, pos))
    if len(idx) > max_candidates:
        top = np.argsort(-scores, kind="stable")[:max_candidates]
        idx, scores, classes, boxes_in, boxes_src, pos = (a[top] for a in (idx, scores, classes, boxes_in, boxes_src, pos))
    keep = kernels.nms(boxes_in, scores, classes, np.float32(iou_threshold), class_agnostic_nms, max_detections)
    t1 = time.perf_counter()
    xyxy = boxes_src[keep]
    masks = None
    if protos is not None:
        boxes_px = mask_boxes(xyxy, (geometry.src_h, geometry.src_w))
        mode = kernels.MASK_MODES[mask_decode_mode]
        if on_gpu:
            flat, offsets = kernels_cuda.decode_masks(rows[pos[keep], 4:], protos, boxes_px, geometry.params(), mode,
                                                      float(tradeoff_factor))
        else:
            anchors = idx[keep]
            first = (5 if has_obj else 4) + nc
            coefs = output0[first:, anchors].T if channels_first else output0[anchors, first:]
            flat, offsets = kernels.decode_masks(np.ascontiguousarray(coefs, np.float32), protos, boxes_px, geometry.params(),
                                                 mode, float(tradeoff_factor))
        flat = flat.view(np.bool_)
        # Column-major crops (see kernels.decode_masks): (h, w) views, Fortran order.
        masks = [
            flat[offsets[i] : offsets[i + 1]].reshape(int(b[2] - b[0]), int(b[3] - b[1])).T
            for i, b in enumerate(boxes_px)
        ]
    t2 = time.perf_counter()
    if timings is not None:
        timings.nms = (t1 - t0) * 1e3
        timings.masks = (t2 - t1) * 1e3
    return Detections(xyxy, scores[keep], classes[keep], (geometry.src_h, geometry.src_w), masks, class_names=names)
