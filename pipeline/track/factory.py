"""One tracker per stream, made from the validated ``tracker`` options.

Example:
    >>> from pipeline.core.items import StreamInfo
    >>> make_tracker(TrackerConfig(), StreamInfo("cam", "h264", fps=25.0)).fps
    25.0
    >>> make_tracker(TrackerConfig(type="none"), StreamInfo("cam", "h264")) is None
    True
"""

from __future__ import annotations

from pipeline.core.items import StreamInfo
from pipeline.track.base import Tracker
from pipeline.track.config import TrackerConfig


def make_tracker(config: TrackerConfig | None, info: StreamInfo) -> Tracker | None:
    """The tracker of the stream ``info`` describes (its fps turns seconds into frames;
    30 when unknown), or None when tracking is off."""
    if config is None or config.type == "none":
        return None
    # Imported here: SciPy's optimiser loads only in pipelines that track.
    from pipeline.track.bytetrack import ByteTrack

    return ByteTrack(config, fps=info.fps)  # ByteTrack assumes 30 where the stream does not say
