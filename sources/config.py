"""Source options: one model per source type, chosen by ``type`` in the pipeline YAML.

Example:
    >>> FileSourceConfig(path="clip.mp4").realtime
    False
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipeline.core.options import Options


class FileSourceConfig(Options):
    type: Literal["file"] = "file"
    path: Path
    realtime: bool = Field(False, description="pace at the file's frame rate, like a camera (live rings)")
    loop: bool = Field(False, description="start over at the end; pts and frame indices keep increasing")
    start_seconds: float = Field(0.0, ge=0, description="seek here first")
    start_frame: int = Field(0, ge=0, description="seek to the frame of this index first (constant-rate files; "
                                                    "indices stay those of the whole file): a resumed analysis")

    @model_validator(mode="after")
    def _one_start(self) -> FileSourceConfig:
        if self.start_seconds and self.start_frame:
            raise ValueError("start_seconds and start_frame: give one of them")
        return self


class ImagesSourceConfig(Options):
    type: Literal["images"] = "images"
    path: Path
    fps: float | None = Field(None, gt=0, description="pts = index / fps when set")


class SyntheticSourceConfig(Options):
    type: Literal["synthetic"] = "synthetic"
    seed: int = 0
    frames: int | None = Field(300, ge=1, description="None: until stopped")
    width: int = Field(1280, ge=16)
    height: int = Field(720, ge=16)
    fps: float = Field(30.0, gt=0)
    realtime: bool = False
    world: Literal["default", "crowded"] = Field("default", description="sources/worlds.py: crowded adds objects and occluders")


class _LiveBase(Options):
    open_timeout: float = Field(5.0, gt=0, description="seconds to connect")
    stall_timeout: float = Field(5.0, gt=0, description="no packet for this long: reconnect (watchdog)")
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(10.0, gt=0)
    backoff_jitter: float = Field(0.25, ge=0, le=1)
    max_attempts: int | None = Field(None, ge=1, description="None: retry forever")
    options: dict[str, str] = Field(default_factory=dict, description="extra FFmpeg options")


class RtspSourceConfig(_LiveBase):
    type: Literal["rtsp"] = "rtsp"
    url: str = Field(description="rtsp://[user:pass@]host[:port]/path (credentials are redacted everywhere)")
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    client: Literal["auto", "vidpipe", "ffmpeg"] = Field(
        "auto", description="auto: vidpipe's own RTSP client (access units out on the RTP marker: a frame interval "
                            "sooner) where the camera offers H.264/H.265 over TCP, FFmpeg otherwise (udp, rtsps://, other "
                            "codecs, replies it cannot parse); `options` are FFmpeg's and apply to FFmpeg only")

    @model_validator(mode="after")
    def _client_speaks_transport(self) -> RtspSourceConfig:
        if self.client == "vidpipe" and (self.rtsp_transport != "tcp" or not self.url.startswith("rtsp://")):
            raise ValueError("client: vidpipe reads rtsp:// over rtsp_transport: tcp only (use auto or ffmpeg)")
        return self


class UrlSourceConfig(_LiveBase):
    type: Literal["url"] = "url"
    url: str = Field(description="http(s)://, HLS .m3u8, rtmp://, udp://, srt:// ... through PyAV")


class WebcamSourceConfig(_LiveBase):
    type: Literal["webcam"] = "webcam"
    device: str = "/dev/video0"
    input_format: str = Field("v4l2", description="FFmpeg input device format")
    video_size: str | None = Field(None, description="e.g. 1280x720")
    framerate: float | None = Field(None, gt=0)


SourceConfig = Annotated[
    FileSourceConfig | ImagesSourceConfig | SyntheticSourceConfig | RtspSourceConfig | UrlSourceConfig | WebcamSourceConfig,
    Field(discriminator="type"),
]
