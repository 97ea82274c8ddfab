"""Build a sink from its validated options (one entry of ``sinks``): each sink takes its
option model as it is; the import waits until a sink of the type is wanted (PyAV, ZeroMQ).

Example:
    >>> from sinks.config import JsonlSinkConfig
    >>> build_sink(JsonlSinkConfig(path="out/r.jsonl", fail_fast=True)).fail_fast
    True
"""

from __future__ import annotations

from sinks.base import Sink
from sinks.config import (
    CallbackSinkConfig,
    JsonlSinkConfig,
    MasksSinkConfig,
    SinkConfig,
    VideoSinkConfig,
    ZmqSinkConfig,
)


def build_sink(cfg: SinkConfig) -> Sink:
    """The sink ``cfg`` describes (``fail_fast`` and the rest applied by the sink)."""
    if isinstance(cfg, JsonlSinkConfig):
        from sinks.jsonl import JsonlSink

        return JsonlSink(cfg)
    if isinstance(cfg, ZmqSinkConfig):
        from sinks.zmq import ZmqSink

        return ZmqSink(cfg)
    if isinstance(cfg, VideoSinkConfig):
        from sinks.video import AnnotatedVideoSink

        return AnnotatedVideoSink(cfg)
    if isinstance(cfg, MasksSinkConfig):
        from sinks.masks import MaskImageSink

        return MaskImageSink(cfg)
    if isinstance(cfg, CallbackSinkConfig):
        from sinks.callback import CallbackSink

        return CallbackSink.from_config(cfg)
    raise TypeError(f"not a sink config: {type(cfg).__name__}")
