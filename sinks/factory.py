"""Build a sink from its validated options (one entry of ``sinks``)."""

from __future__ import annotations

from sinks.base import Sink
from sinks.config import SinkConfig


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
