"""Build a source from its validated options (the ``source`` of a stream)."""

from __future__ import annotations

from sources.base import Source
from sources.config import SourceConfig


def build_source(stream_id: str, cfg: SourceConfig) -> Source:
    if cfg.type == "file":
        from sources.file import VideoFileSource

        return VideoFileSource(stream_id, cfg.path, cfg.realtime, cfg.loop, cfg.start_seconds)
    if cfg.type == "images":
        from sources.images import ImageFolderSource

        return ImageFolderSource(stream_id, cfg.path, cfg.fps)
    if cfg.type == "synthetic":
        from sources.synthetic import SyntheticSource

        return SyntheticSource(stream_id, cfg.seed, cfg.frames, cfg.width, cfg.height, cfg.fps, cfg.realtime)
    if cfg.type in ("rtsp", "url", "webcam"):
        from sources.live import LiveVideoSource

        options = dict(cfg.options)
        common = dict(open_timeout=cfg.open_timeout, stall_timeout=cfg.stall_timeout, backoff_initial=cfg.backoff_initial,
                      backoff_max=cfg.backoff_max, backoff_jitter=cfg.backoff_jitter, max_attempts=cfg.max_attempts)
        if cfg.type == "rtsp":
            return LiveVideoSource(stream_id, cfg.url, cfg.rtsp_transport, options=options, kind="rtsp", **common)
        if cfg.type == "url":
            return LiveVideoSource(stream_id, cfg.url, options=options, kind="url", **common)
        if cfg.video_size:
            options.setdefault("video_size", cfg.video_size)
        if cfg.framerate:
            options.setdefault("framerate", str(cfg.framerate))
        return LiveVideoSource(stream_id, cfg.device, options=options, input_format=cfg.input_format, kind="webcam", **common)
    raise ValueError(f"unknown source type {cfg.type!r}")  # pragma: no cover - config validates
