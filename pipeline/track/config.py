"""Tracker options (the ``tracker`` section).

The validated object travels as it is to every tracker it configures (one per stream):
nothing copies its fields.

Example:
    >>> TrackerConfig().lost_track_seconds
    3.0
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.core.options import Options


class TrackerConfig(Options):
    """ByteTrack's thresholds, its recovery after occlusion, and the tracker stage's behaviour
    on carried frames and reconnects."""

    type: Literal["bytetrack", "none"] = "bytetrack"
    track_high_threshold: float = Field(default=0.5, ge=0, le=1)
    track_low_threshold: float = Field(default=0.1, ge=0, le=1)
    new_track_threshold: float = Field(default=0.6, ge=0, le=1)
    match_threshold: float = Field(default=0.8, ge=0, le=1, description="max 1 - IoU of a match")
    lost_track_seconds: float = Field(default=3.0, gt=0, description="converted to frames with the stream's fps; "
                                      "lost tracks are matched and re-identified for this long (3 s was chosen with "
                                      "re-identification by appearance; by motion alone, 1.5 s did as well)")
    minimum_consecutive_frames: int = Field(default=2, ge=1, description="matched frames in a row before an id is issued")
    mask_iou: bool = Field(default=False, description="match on mask IoU instead of box IoU (slower)")
    fuse_score: bool = Field(default=True, description="weigh the IoU of confident matches by the detection score (ByteTrack's default)")
    carry_masks: bool = Field(default=True, description="infer_interval frames: last mask scaled to the box (false: no masks)")
    reset_on_reconnect: bool = False
    # Recovery after occlusion (pipeline/track/recovery.py); all off: ByteTrack as published.
    observation_centric: bool = Field(default=True, description="OC-SORT's re-update of a re-found track from its last "
                                      "observation (ORU) and recovery round on the last observed box (OCR)")
    direction_weight: float = Field(default=0.2, ge=0, le=1, description="OC-SORT's momentum (OCM): weight of agreeing "
                                    "with the direction between observations in the first round (0: off)")
    reidentify_lost: bool = Field(default=True, description="re-identify lost tracks (within lost_track_seconds) by "
                                  "the motion observed before they were lost (and class: class_change_cost)")
    appearance: bool = Field(default=True, description="re-identify lost tracks also by their mean colour (inside the "
                             "mask, else the box's centre) where the tracker is given the frame (the pipeline's tracker "
                             "stage gives it): a lost object found again further from where its motion puts it")
    appearance_threshold: float = Field(default=25.0, ge=0, description="max BGR distance (0-441) between a lost track's "
                                        "mean colour and a detection's for a re-identification by appearance (0: none)")
    reid_max_speed: float = Field(default=0.3, ge=0, description="re-identification by appearance: frame widths per "
                                  "second a lost object may stray from where its motion puts it (plus its own size)")
    class_change_cost: float = Field(default=0.3, ge=0, le=1, description="added to the cost of a recovery match (OCR, "
                                     "re-identification) whose detection has another class than the track: a detector "
                                     "may flip the class of a half-hidden object (1: the same class only)")
    skip_duplicates: bool = Field(default=True, description="a detection overlapping a matched one at IoU >= 0.5 (the "
                                  "same object boxed under another class) neither starts a track nor recovers a lost one")


#: ByteTrack as published, vidpipe's tracker before recovery after occlusion (issue 20):
#: the baseline of benchmarks/heldout.py.
CLASSIC_BYTETRACK = TrackerConfig(lost_track_seconds=1.0, observation_centric=False, direction_weight=0,
                                  reidentify_lost=False, appearance=False, skip_duplicates=False)
