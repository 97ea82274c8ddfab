"""Build a source from its validated options (the ``source`` of a stream).

Example:
    >>> from sources.config import SyntheticSourceConfig
    >>> build_source("sim", SyntheticSourceConfig(frames=2)).describe()
    'synthetic seed=0 1280x720'
"""

from __future__ import annotations

from sources.base import Source
from sources.config import SourceConfig


def build_source(stream_id: str, config: SourceConfig) -> Source:
    # Imported on use: each source type pulls in its own libraries.
    if config.type == "file":
        from sources.file import VideoFileSource

        return VideoFileSource(stream_id, config)
    if config.type == "images":
        from sources.images import ImageFolderSource

        return ImageFolderSource(stream_id, config)
    if config.type == "synthetic":
        from sources.synthetic import SyntheticSource

        return SyntheticSource(stream_id, config)
    if config.type in ("rtsp", "url", "webcam"):
        from sources.live import LiveVideoSource

        return LiveVideoSource(stream_id, config)
    raise TypeError(f"not a source config: {type(config).__name__}")
