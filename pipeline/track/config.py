"""Tracker options (the ``tracker`` section).

Example:
    >>> TrackerConfig().lost_track_seconds
    1.0
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.core.options import Options


class TrackerConfig(Options):
    type: Literal["bytetrack", "none"] = "bytetrack"
    track_high_threshold: float = Field(0.5, ge=0, le=1)
    track_low_threshold: float = Field(0.1, ge=0, le=1)
    new_track_threshold: float = Field(0.6, ge=0, le=1)
    match_threshold: float = Field(0.8, ge=0, le=1, description="max 1 - IoU of a match")
    lost_track_seconds: float = Field(1.0, gt=0, description="converted to frames with the stream's fps")
    minimum_consecutive_frames: int = Field(2, ge=1, description="matched frames in a row before an id is issued")
    mask_iou: bool = Field(False, description="match on mask IoU instead of box IoU (slower)")
    carry_masks: bool = Field(True, description="infer_interval frames: last mask scaled to the box (false: no masks)")
    reset_on_reconnect: bool = False
