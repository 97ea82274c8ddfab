"""One frame's result: frame metadata, its :class:`Detections`, per-stage timings and
end-to-end latency (DESIGN.md, "Data that flows").

Example:
    >>> from pipeline.vision.detections import Detections
    >>> r = Result("cam0", 3, 0.1, 1700000000.0, 48, 64, "m", Detections.empty((48, 64)))
    >>> r.stream_id, r.frame_index, len(r.detections)
    ('cam0', 3, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.vision.detections import Detections


@dataclass
class Result:
    stream_id: str
    frame_index: int
    pts: float | None
    captured_at: float
    width: int
    height: int
    model: str
    detections: Detections
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage
    latency_ms: float = 0.0  # capture (arrival) to result
    drops: dict[str, int] = field(default_factory=dict)
    inferred: bool = True  # False: boxes carried by the tracker (infer_interval)
    gap: bool = False  # first result after a reconnect or skipped stretch
    stream_state: str = "streaming"  # the source's state when the result left the pipeline
    image: np.ndarray | None = None  # the frame (BGR), for annotating sinks
    source_path: str | None = None  # the file the frame came from (image folders)
    is_control = False

    def to_supervision(self, masks: bool = True):
        return self.detections.to_supervision(masks=masks)
