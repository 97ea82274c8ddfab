"""The server's options (``vidpipe serve [CONFIG]``): limits, batching, model aliases, URL images.

Example:
    >>> ServeConfig(aliases={"shapes/1": "shapes-yolov8seg"}).limits.queue_size
    32
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError

from pipeline.core.errors import ConfigError
from pipeline.core.options import Options
from pipeline.infer.config import BackendOptions, BatchingConfig


class LimitsConfig(Options):
    """What one request may cost: its body, its images' pixels, the queue it waits in."""

    max_body_mb: float = Field(16.0, gt=0, description="request bodies above this are refused (413)")
    max_pixels: int = Field(40_000_000, ge=1, description="an image whose header declares more pixels is refused (413) "
                                                          "before it is decoded (decompression bombs)")
    max_images: int = Field(64, ge=1, description="images in one request")
    queue_size: int = Field(32, ge=1, description="images waiting per model; a request that finds it full gets 503")
    max_requests: int = Field(128, ge=1, description="inference requests in progress at once (read, decoded, queued or "
                                                     "running); more get 503 before their body is read")
    request_timeout_s: float = Field(60.0, gt=0, description="an image not inferred within this answers 503")
    read_timeout_s: float = Field(30.0, gt=0, description="each part of a request body must arrive within this (408)")


class UrlConfig(Options):
    """Images given as URLs: off unless enabled; then only allow-listed hosts, never private addresses."""

    enabled: bool = False
    allow_hosts: list[str] = Field(default_factory=list, description="host names allowed (exact, or '.example.com' "
                                                                     "for its subdomains); empty: any public host")
    allow_private: bool = Field(False, description="allow loopback/private/link-local addresses (tests, labs)")
    timeout_s: float = Field(5.0, gt=0)


class ServeConfig(Options):
    """The YAML given as ``vidpipe serve CONFIG``; the command line's flags override it."""

    host: str = "127.0.0.1"
    port: int = Field(9001, ge=0, le=65535)
    api_key: str | None = Field(None, min_length=1)
    models_dir: Path | None = Field(None, description="ONNX files served by their name: DIR/<id>.onnx")
    aliases: dict[str, str] = Field(default_factory=dict, description="model id (e.g. Roboflow's 'project/3') -> "
                                                                      "bundled name or file under models_dir")
    preload: list[str] = Field(default_factory=list, description="models loaded at start")
    batching: BatchingConfig = Field(default_factory=lambda: BatchingConfig(max_batch_size=8, max_wait_ms=5.0))
    backend: BackendOptions = Field(default_factory=BackendOptions)
    postprocess_device: Literal["cpu", "cuda"] = Field("cpu", description="where post-processing runs (cuda: on the "
                                                                           "GPU, falling back to the CPU where there is none)")
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    urls: UrlConfig = Field(default_factory=UrlConfig)
    state: Path | None = Field(None, description="pipelines run by the server (POST /pipelines) are written here on "
                                                 "each change and restored at start")
    cluster: str | None = Field(None, description="ray or ray://HOST:PORT: pipelines (POST /pipelines) run on that Ray "
                                                  "cluster's workers (extra [ray])")
    pipeline_buffer: int = Field(1000, ge=1, description="records kept per pipeline for GET /pipelines/{id}/results")


def load_serve_config(path: str | Path | None, **overrides: object) -> ServeConfig:
    """The YAML at ``path`` (or the defaults), with the non-None ``overrides`` on top."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"serve config {p}: {exc.strerror or exc}") from None
        except yaml.YAMLError:
            raise ConfigError(f"serve config {p}: not valid YAML") from None
        if not isinstance(data, dict):
            raise ConfigError(f"serve config {p}: expected a mapping at the top")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"serve config {path or '(flags)'}: {where}: {err['msg']}") from None
