"""One tracker per stream, made from the validated ``tracker`` options.

Example:
    >>> from pipeline.core.items import StreamInfo
    >>> make_tracker(TrackerConfig(), StreamInfo("cam", "h264", fps=25.0)).fps
    25.0
    >>> make_tracker(TrackerConfig(type="none"), StreamInfo("cam", "h264")) is None
    True
    >>> check_task_trackable("classify", TrackerConfig(), "m")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.core.errors.ConfigError: tracker: model m is a classification model (...): remove the tracker section
"""

from __future__ import annotations

from pipeline.core.errors import ConfigError
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


#: Tasks whose models answer once per frame: nothing to track. Ultralytics' names (what
#: ``Model.task`` reports) and the long forms.
FRAME_TASKS = {"classify": "classification", "classification": "classification",
               "semantic": "semantic segmentation", "semantic-segmentation": "semantic segmentation"}


def check_task_trackable(task: str | None, config: TrackerConfig | None, model: str) -> None:
    """ConfigError when a tracker is configured for a model whose task has no boxes."""
    if config is None or config.type == "none" or task not in FRAME_TASKS:
        return
    raise ConfigError(f"tracker: model {model} is a {FRAME_TASKS[task]} model (one answer per frame, no boxes to track): "
                      "remove the tracker section")
