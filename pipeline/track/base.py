"""What the tracker stage needs of a tracker: one per stream, fed every frame in order.

A structural protocol, so a tracker need not inherit anything: ByteTrack satisfies it as
it is, and a test double needs only the three methods.

Example:
    >>> from pipeline.track.bytetrack import ByteTrack
    >>> tracker: Tracker = ByteTrack()
    >>> isinstance(tracker, Tracker)
    True
    >>> tracker.update(Detections([[10, 10, 50, 50]], [0.9], [0], (100, 100))).tracker_id.tolist()
    [1]
    >>> tracker.predict((100, 100)).tracker_id.tolist()  # a frame without inference
    [1]
    >>> tracker.reset()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from pipeline.vision.detections import Detections


@runtime_checkable
class Tracker(Protocol):
    """Per-stream track state; ids are unique within the stream, never across streams."""

    def update(self, detections: Detections, image: np.ndarray | None = None) -> Detections:
        """Match an inferred frame's detections to the tracks; returns them with
        ``tracker_id`` set (-1: not tracked yet). ``image``: the frame they were found in,
        for a tracker that uses appearance (it may ignore it)."""
        ...

    def predict(self, image_hw: tuple[int, int], class_names: Sequence[str] = (), with_masks: bool = True) -> Detections:
        """A frame without inference (``infer_interval`` > 1): the tracked objects moved
        on by the motion model alone."""
        ...

    def reset(self) -> None:
        """Forget every track (a source reconnected and the scene may have changed)."""
        ...
