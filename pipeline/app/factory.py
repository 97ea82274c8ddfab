"""Build sources, the model and sinks from their validated config sections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.infer.backends.onnxruntime import GpuSettings
from pipeline.app.config import ModelConfig, SinkConfig, SourceConfig, StreamConfig, TrackerConfig
from pipeline.core.errors import ModelError
from pipeline.core.items import StreamInfo
from pipeline.infer.model import Model
from pipeline.infer.postprocess import PostprocessOptions
from pipeline.zoo import resolve_model
from sinks.base import Sink
from sources.base import Source


def build_source(stream: StreamConfig) -> Source:
    cfg: SourceConfig = stream.source
    if cfg.type == "file":
        from sources.file import VideoFileSource

        return VideoFileSource(stream.id, cfg.path, cfg.realtime, cfg.loop, cfg.start_seconds)
    if cfg.type == "images":
        from sources.images import ImageFolderSource

        return ImageFolderSource(stream.id, cfg.path, cfg.fps)
    if cfg.type == "synthetic":
        from sources.synthetic import SyntheticSource

        return SyntheticSource(stream.id, cfg.seed, cfg.frames, cfg.width, cfg.height, cfg.fps, cfg.realtime)
    if cfg.type in ("rtsp", "url", "webcam"):
        from sources.live import LiveVideoSource

        options = dict(cfg.options)
        common = dict(open_timeout=cfg.open_timeout, stall_timeout=cfg.stall_timeout, backoff_initial=cfg.backoff_initial,
                      backoff_max=cfg.backoff_max, backoff_jitter=cfg.backoff_jitter, max_attempts=cfg.max_attempts)
        if cfg.type == "rtsp":
            return LiveVideoSource(stream.id, cfg.url, cfg.rtsp_transport, options=options, kind="rtsp", **common)
        if cfg.type == "url":
            return LiveVideoSource(stream.id, cfg.url, options=options, kind="url", **common)
        if cfg.video_size:
            options.setdefault("video_size", cfg.video_size)
        if cfg.framerate:
            options.setdefault("framerate", str(cfg.framerate))
        return LiveVideoSource(stream.id, cfg.device, options=options, input_format=cfg.input_format, kind="webcam", **common)
    raise ValueError(f"unknown source type {cfg.type!r}")  # pragma: no cover - config validates


def postprocess_options(cfg: ModelConfig) -> PostprocessOptions:
    p = cfg.postprocess
    return PostprocessOptions(
        confidence=p.confidence, iou_threshold=p.iou_threshold, class_agnostic_nms=p.class_agnostic_nms,
        max_detections=p.max_detections, max_candidates=p.max_candidates,
        class_filter=tuple(p.class_filter) if p.class_filter is not None else None,
        mask_decode_mode=p.mask_decode_mode, tradeoff_factor=p.tradeoff_factor, max_area_ratio=p.max_area_ratio,
        device=p.device,
    )


def build_model(cfg: ModelConfig, max_batch_size: int = 1) -> Model:
    path = resolve_model(cfg.path)
    gpu = GpuSettings(device_id=cfg.device_id, fp16=cfg.fp16, engine_cache_dir=cfg.engine_cache_dir,
                      workspace_gb=cfg.workspace_gb, max_batch_size=max_batch_size)
    try:
        options = postprocess_options(cfg)
        model = Model.load(path, cfg.providers, cfg.intra_op_threads, cfg.inter_op_threads, options,
                           cfg.names_file, cfg.layout, backend=cfg.backend, gpu=gpu, io_binding=cfg.io_binding)
    except ValueError as exc:  # e.g. class_filter names the model does not have
        raise ModelError(f"model {path}: {exc}") from exc
    if cfg.name:
        model.name = cfg.name
    return model


def build_sink(cfg: SinkConfig) -> Sink:
    if cfg.type == "jsonl":
        from sinks.jsonl import JsonlSink

        sink: Sink = JsonlSink(cfg.path, cfg.mask_format, cfg.polygon_precision, cfg.flush_every, format=cfg.format)
    elif cfg.type == "zmq":
        from sinks.zmq import ZmqSink

        curve = cfg.curve
        sink = ZmqSink(cfg.endpoint, cfg.mode, cfg.bind, cfg.send_frames, cfg.jpeg_quality, cfg.format, cfg.mask_format,
                       cfg.polygon_precision, cfg.hwm, cfg.heartbeat_s,
                       curve.server_secret_key if curve else None, curve.allowed_clients if curve else None,
                       sndbuf=cfg.sndbuf_bytes)
    elif cfg.type == "video":
        from sinks.video import AnnotatedVideoSink

        sink = AnnotatedVideoSink(cfg.path, cfg.fps, cfg.crf, cfg.masks, cfg.boxes, cfg.labels, cfg.traces, cfg.lossless)
    elif cfg.type == "masks":
        from sinks.masks import MaskImageSink

        sink = MaskImageSink(cfg.path)
    elif cfg.type == "callback":
        from sinks.callback import CallbackSink, import_callable

        sink = CallbackSink(import_callable(cfg.target), cfg.lossless)
    else:  # pragma: no cover - config validates
        raise ValueError(f"unknown sink type {cfg.type!r}")
    sink.fail_fast = cfg.fail_fast
    return sink


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
