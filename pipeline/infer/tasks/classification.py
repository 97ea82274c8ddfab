"""Classification outputs ``(B, nc)`` (probabilities, as Ultralytics exports them).

Per frame: the ``top_k`` classes at or above ``confidence``, restricted to ``class_filter``.
With ``classification_window`` N > 1 the top-k are those of the mean probabilities over the
stream's last N inferred frames; that window lives in the stream's
:class:`~pipeline.infer.tasks.base.StreamState` (the inference stage keeps one per stream),
since one decoder serves every stream of its model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.layouts import ModelLayout
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks.base import PostprocessTimings, StreamState, host
from pipeline.infer.tasks.segmentation import allowed_classes
from pipeline.vision.classification import Classification
from pipeline.vision.detections import Detections

WINDOW_KEY = "classification.window"


class ClassificationDecoder:
    """A frame's top-k classes; no boxes."""

    task = "classify"

    def __init__(self, layout: ModelLayout, options: PostprocessOptions, class_names: Sequence[str]) -> None:
        self.layout, self.options = layout, options
        self.class_names = tuple(class_names)
        filtered = options.class_filter is not None
        self.allowed = allowed_classes(options.class_filter, self.class_names, layout.num_classes) if filtered else None

    def decode(self, outputs: Sequence[Any], index: int, letterbox: Letterbox,
               timings: PostprocessTimings | None = None, state: StreamState | None = None) -> Detections:
        p = host(outputs[self.layout.detections_output][index]).astype(np.float32).reshape(-1)
        window = self.options.classification_window
        if window > 1 and state is not None:
            recent = state.values.setdefault(WINDOW_KEY, deque(maxlen=window))
            recent.append(p)
            p = np.mean(np.stack(recent), axis=0, dtype=np.float32) if len(recent) > 1 else p
        if self.allowed is not None:
            p = np.where(self.allowed, p, np.float32(-1.0))  # below any confidence: never reported
        top = Classification.from_probabilities(p, self.options.top_k, self.options.confidence, self.class_names)
        dets = Detections.empty((letterbox.src_h, letterbox.src_w), with_masks=False, class_names=self.class_names)
        dets.classification = top
        return dets
