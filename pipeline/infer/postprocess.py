"""Post-processing alone, on the raw outputs of ONE image: the public entry point.

The pipeline decodes outputs through the task decoder its model chose at load
(:mod:`pipeline.infer.tasks`); this function builds that decoder for one call, for users
who run a model themselves.

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

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import select_kernels
from pipeline.infer.layouts import ModelLayout
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks import PostprocessTimings, SegmentationDecoder, allowed_classes
from pipeline.vision.detections import Detections

__all__ = ["PostprocessOptions", "PostprocessTimings", "allowed_classes", "postprocess_segmentation"]


def postprocess_segmentation(
    output0: Any,
    protos: Any | None,
    layout: str,
    input_hw: tuple[int, int],
    source_hw: tuple[int, int],
    *,
    options: PostprocessOptions | None = None,
    class_names: Sequence[str] | None = None,
    letterbox: Letterbox | None = None,
    timings: PostprocessTimings | None = None,
    **overrides: Any,
) -> Detections:
    """Decode the raw outputs of one image (batch axis removed). ``protos`` is None for
    detection layouts (``yolov5``, ``yolov8``). Options come as a
    :class:`PostprocessOptions` or as its fields by keyword (``confidence=0.5``,
    ``mask_decode_mode="fast"``, ``device="cuda"`` with device arrays, ...)."""
    if overrides:
        base = options.model_dump() if options is not None else {}
        options = PostprocessOptions.model_validate({**base, **overrides})
    options = options or PostprocessOptions()
    num_masks = 0 if protos is None else int(protos.shape[0])
    model_layout = ModelLayout.of_arrays(layout, tuple(output0.shape), num_masks)
    kernels, _ = select_kernels(options.device)
    decoder = SegmentationDecoder(model_layout, options, tuple(class_names or ()), kernels)
    geometry = letterbox or Letterbox.fit(source_hw, input_hw)
    outputs = [_batch_of_one(output0)] + ([_batch_of_one(protos)] if protos is not None else [])
    return decoder.decode(outputs, 0, geometry, timings)


def _batch_of_one(array: Any) -> Any:
    """A batch axis of one, without a copy (NumPy and device arrays alike)."""
    return array[np.newaxis] if isinstance(array, np.ndarray) else array.reshape((1, *array.shape))
