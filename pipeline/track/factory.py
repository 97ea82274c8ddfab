"""One tracker per stream, made from the validated ``tracker`` options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.core.items import StreamInfo
from pipeline.track.config import TrackerConfig


def tracker_factory(cfg: TrackerConfig | None) -> Callable[[StreamInfo], Any] | None:
    """A function making one tracker per stream (fps from the stream), or None."""
    if cfg is None or cfg.type == "none":
        return None
    from pipeline.track.bytetrack import ByteTrack

    def make(info: StreamInfo) -> ByteTrack:
        return ByteTrack(
            fps=info.fps or 30.0, track_high_threshold=cfg.track_high_threshold, track_low_threshold=cfg.track_low_threshold,
            new_track_threshold=cfg.new_track_threshold, match_threshold=cfg.match_threshold,
            lost_track_seconds=cfg.lost_track_seconds, minimum_consecutive_frames=cfg.minimum_consecutive_frames,
            mask_iou=cfg.mask_iou,
        )

    make.reset_on_reconnect = cfg.reset_on_reconnect  # type: ignore[attr-defined]
    return make
