"""Sink options: one model per sink type, chosen by ``type`` in the pipeline YAML.

Example:
    >>> JsonlSinkConfig(path="out/r.jsonl").mask_format
    'rle'
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from pipeline.core.options import Options
from pipeline.wire.records import MaskFormat, OutputFormat


class _SinkBase(Options):
    fail_fast: bool = Field(False, description="a failure of this sink stops the pipeline (else: logged, counted)")


class _FileSinkBase(_SinkBase):
    overwrite: bool = Field(False, description="replace an existing output (else the run is refused at start); "
                                               "the new file is written as <name>.partial and renamed when complete")


def check_template(path: str, fields: dict[str, object]) -> str:
    """``path`` if it is a template of only ``fields`` (``{stream}``, ``{frame:06d}``);
    else a ValueError naming the unknown field and the known ones.

    >>> check_template("out/{date}.mp4", {"stream": "cam0"})
    Traceback (most recent call last):
    ...
    ValueError: unknown field {date} in the path template; the known fields: {stream}
    """
    known = ", ".join(f"{{{name}}}" for name in fields)
    try:
        for _text, name, _spec, _conv in string.Formatter().parse(path):
            if name is not None and name not in fields:
                raise ValueError(f"unknown field {{{name}}} in the path template; the known fields: {known}")
        path.format(**fields)
    except (KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ValueError(f"cannot fill the path template ({exc}); the known fields: {known}") from None
    except ValueError as exc:
        if str(exc).startswith("unknown field"):
            raise
        raise ValueError(f"not a valid path template ({exc}); the known fields: {known}") from None
    return path


class JsonlSinkConfig(_FileSinkBase):
    type: Literal["jsonl"] = "jsonl"
    path: Path
    mode: Literal["write", "append"] = Field("write", description="append: add lines to an existing file (never refused)")
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


class VideoSinkConfig(_FileSinkBase):
    type: Literal["video"] = "video"
    path: str = Field(description="mp4 path; '{stream}' is replaced by the stream id (needed for several streams)")
    fps: float | None = Field(None, gt=0, description="frame rate for frames without timestamps (default 30); "
                                                       "frames keep the source's own timing where they have it")
    crf: int = Field(23, ge=0, le=51)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = Field(
        "ultrafast", description="x264 speed preset: ultrafast costs ~3 ms a 720p frame, veryfast ~8.5 (smaller files at one crf)")
    masks: bool = Field(True, description="instance masks, and a semantic segmentation model's class overlay")
    boxes: bool = True
    labels: bool = Field(True, description="class, track id and score of each box; a classification model's top class")
    traces: bool = True
    keypoints: bool = Field(True, description="a pose model's keypoints and skeleton (COCO-17 edges for 17 keypoints)")
    keypoint_confidence: float = Field(0.5, ge=0, le=1, description="keypoints drawn above this confidence")
    lossless: bool = True

    @field_validator("path")
    @classmethod
    def _template(cls, path: str) -> str:
        return check_template(path, {"stream": "cam0"})


class MasksSinkConfig(_FileSinkBase):
    type: Literal["masks"] = "masks"
    path: str = "out/masks/{stream}/{frame:06d}.png"

    @field_validator("path")
    @classmethod
    def _template(cls, path: str) -> str:
        if "{frame" not in path:
            raise ValueError("the path needs a '{frame}' field (one image per frame), e.g. out/masks/{stream}/{frame:06d}.png")
        return check_template(path, {"stream": "cam0", "frame": 0})


class CallbackSinkConfig(_SinkBase):
    type: Literal["callback"] = "callback"
    target: str = Field(description="'package.module:function', called with every Result")
    lossless: bool = True


SinkConfig = Annotated[JsonlSinkConfig | ZmqSinkConfig | VideoSinkConfig | MasksSinkConfig | CallbackSinkConfig,
                       Field(discriminator="type")]
