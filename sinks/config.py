"""Sink options: one model per sink type, chosen by ``type`` in the pipeline YAML.

Example:
    >>> JsonlSinkConfig(path="out/r.jsonl").mask_format
    'rle'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from pipeline.core.options import Options
from pipeline.wire.records import MaskFormat, OutputFormat


class _SinkBase(Options):
    fail_fast: bool = Field(False, description="a failure of this sink stops the pipeline (else: logged, counted)")


class JsonlSinkConfig(_SinkBase):
    type: Literal["jsonl"] = "jsonl"
    path: Path
    format: OutputFormat = "vidpipe"
    mask_format: MaskFormat = "rle"
    polygon_precision: float = Field(1.0, ge=0)
    flush_every: int = Field(1, ge=1)


class CurveServerConfig(Options):
    server_secret_key: Path = Field(description="server.key_secret from `vidpipe keys generate`")
    allowed_clients: Path = Field(description="folder of allowed clients' public keys (*.key)")


class ZmqSinkConfig(_SinkBase):
    type: Literal["zmq"] = "zmq"
    endpoint: str = "tcp://127.0.0.1:5555"
    mode: Literal["pub", "push"] = "pub"
    bind: bool = True
    send_frames: bool = False
    jpeg_quality: int = Field(80, ge=1, le=100)
    format: OutputFormat = "vidpipe"
    mask_format: MaskFormat = "rle"
    polygon_precision: float = Field(1.0, ge=0)
    hwm: int = Field(1000, ge=1, description="high-water mark (messages queued per subscriber)")
    sndbuf_bytes: int | None = Field(None, ge=1024, description="kernel send buffer; small: slow subscribers lose sooner")
    heartbeat_s: float = Field(1.0, ge=0)
    send_timeout_s: float = Field(5.0, gt=0, description="push: a result no consumer takes within this long is "
                                  "dropped and counted, and so is each next one until a consumer takes one again")
    curve: CurveServerConfig | None = None


class VideoSinkConfig(_SinkBase):
    type: Literal["video"] = "video"
    path: str = Field(description="mp4 path; '{stream}' is replaced by the stream id (needed for several streams)")
    fps: float = Field(30.0, gt=0)
    crf: int = Field(23, ge=0, le=51)
    masks: bool = True
    boxes: bool = True
    labels: bool = True
    traces: bool = True
    lossless: bool = True


class MasksSinkConfig(_SinkBase):
    type: Literal["masks"] = "masks"
    path: str = "out/masks/{stream}/{frame:06d}.png"


class CallbackSinkConfig(_SinkBase):
    type: Literal["callback"] = "callback"
    target: str = Field(description="'package.module:function', called with every Result")
    lossless: bool = True


SinkConfig = Annotated[JsonlSinkConfig | ZmqSinkConfig | VideoSinkConfig | MasksSinkConfig | CallbackSinkConfig,
                       Field(discriminator="type")]
