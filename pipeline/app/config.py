"""Pipeline configuration: YAML validated by pydantic (Savant-style declarative pipelines).

An error names the field path and what was expected, e.g.
``config error at streams.0.source.path: Field required``.

Example:
    >>> cfg = load_config_dict({
    ...     "streams": [{"id": "cam0", "source": {"type": "synthetic", "frames": 10}}],
    ...     "sinks": [{"type": "jsonl", "path": "out/r.jsonl"}],
    ... })
    >>> cfg.streams[0].source.type, cfg.model.postprocess.mask_decode_mode
    ('synthetic', 'accurate')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from pipeline.app.cluster_options import ClusterConfig
from pipeline.core.errors import ConfigError
from pipeline.core.options import Options, StreamOptions
from pipeline.core.redact import redact_text, register_config
from pipeline.infer.config import BatchingConfig, ModelConfig
from pipeline.track.config import TrackerConfig
from sinks.config import SinkConfig
from sources.config import SourceConfig


class StreamConfig(StreamOptions):
    id: str = Field(min_length=1)
    source: SourceConfig


class RingsConfig(Options):
    packets: int = Field(64, ge=1)
    frames: int = Field(4, ge=1)
    live_frames: int = Field(1, ge=1, description="the frame ring of a live stream (it drops the oldest): one frame, "
                             "so a model that falls behind takes the newest frame, not one that waited behind another "
                             "(at 2x overload: mean glass-to-result 48 ms against 65 with 2, the same results/s)")
    results: int = Field(32, ge=1)
    sink: int = Field(64, ge=1)


class MetricsConfig(Options):
    port: int = Field(9100, ge=0, le=65535, description="Prometheus endpoint port (0: any free port)")
    host: str = Field("127.0.0.1", description="bind address; 127.0.0.1 keeps it on this machine")


class PipelineConfig(Options):
    name: str = "vidpipe"
    streams: list[StreamConfig] = Field(default_factory=list, description="at least one, unless keep_alive")
    keep_alive: bool = Field(False, description="run on when every stream has ended, for streams added while it "
                                                "runs (Pipeline.add_stream); until stopped (a signal)")
    model: ModelConfig = Field(default_factory=ModelConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    tracker: TrackerConfig | None = Field(None, description="null: no tracking (track_id -1)")
    sinks: list[SinkConfig] = Field(default_factory=list)
    rings: RingsConfig = Field(default_factory=RingsConfig)
    metrics: MetricsConfig | None = Field(None, description="serve Prometheus metrics while running")
    decoder_threads: int = Field(0, ge=0, description="0: FFmpeg picks")
    cluster: ClusterConfig | None = Field(None, description="cluster mode (--cluster): each worker's resources and "
                                                            "capacity; ignored without --cluster")

    @field_validator("streams")
    @classmethod
    def _unique_ids(cls, streams: list[StreamConfig]) -> list[StreamConfig]:
        ids = [s.id for s in streams]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"stream ids must be unique, repeated: {dupes}")
        return streams

    @model_validator(mode="after")
    def _some_stream(self) -> PipelineConfig:
        if not self.streams and not self.keep_alive:
            raise ValueError("streams: a pipeline needs at least one stream (or keep_alive: true, to add them while it runs)")
        return self

    @model_validator(mode="after")
    def _interval_needs_tracker(self) -> PipelineConfig:
        tracking = self.tracker is not None and self.tracker.type != "none"
        for i, s in enumerate(self.streams):
            if s.infer_interval > 1 and not tracking:
                raise ValueError(f"streams.{i}.infer_interval > 1 needs a tracker (set tracker: {{type: bytetrack}})")
        return self

    @model_validator(mode="after")
    def _sink_paths(self) -> PipelineConfig:
        paths = [str(s.path) for s in self.sinks if hasattr(s, "path")]
        if len(paths) != len(set(paths)):
            raise ValueError("two sinks write the same file")
        return self


def _type_tags(union: Any) -> frozenset[str]:
    """The ``type`` values of a discriminated union of option models (pydantic puts them in error paths)."""
    members = get_args(get_args(union)[0])
    return frozenset(get_args(m.model_fields["type"].annotation)[0] for m in members)


_TYPE_TAGS = _type_tags(SourceConfig) | _type_tags(SinkConfig)


def _field_path(loc: tuple[Any, ...]) -> str:
    """The dotted field path of an error, without the union's tag pydantic puts after a
    ``source`` or a sink's index (``source.rtsp.url`` is ``source.url``; a field named
    like a tag, e.g. ``url``, stays)."""
    parts: list[str] = []
    prev: Any = None
    for p in loc:
        if not (isinstance(p, str) and p in _TYPE_TAGS and (prev == "source" or isinstance(prev, int))):
            parts.append(str(p))
        prev = p
    return ".".join(parts)


def _format_error(exc: ValidationError, origin: str) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = _field_path(first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    got = first.get("input")
    got_txt = f", got {got!r}" if first["type"] not in ("missing", "extra_forbidden") and not isinstance(got, dict) else ""
    return redact_text(f"config error in {origin} at {loc or '<top>'}: {msg}{got_txt}{more}")


def load_config_dict(data: Any, origin: str = "<dict>") -> PipelineConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"config error in {origin}: expected a mapping at the top, got {type(data).__name__}")
    register_config(data)  # before validation: its errors quote values too
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, origin)) from None


def load_stream_config(data: StreamConfig | Any, origin: str = "stream") -> StreamConfig:
    """A stream's options (``id``, ``source`` and the StreamOptions), as in ``streams:``;
    a ConfigError naming the field otherwise (``config error in stream 'cam2' at source.url: ...``).

    >>> load_stream_config({"id": "cam2", "source": {"type": "rtsp"}})
    Traceback (most recent call last):
    ...
    pipeline.core.errors.ConfigError: config error in stream 'cam2' at source.url: Field required
    """
    if isinstance(data, StreamConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"config error in {origin}: expected a mapping, got {type(data).__name__}")
    register_config(data)
    sid = data.get("id")
    where = f"{origin} {sid!r}" if isinstance(sid, str) and sid else origin
    try:
        return StreamConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, where)) from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``--set path=value``: dotted path (list indices as numbers), value parsed as YAML."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects path=value, got {item!r}")
        path, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:  # redacted: the value may be a URL with credentials
            raise ConfigError(redact_text(f"--set {path.strip()}: not a YAML value ({getattr(exc, 'problem', exc)})")) from None
        keys = path.strip().split(".")
        node: Any = data
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise ConfigError(f"--set {path}: {key!r} is not an index of a list of {len(node)}")
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                else:
                    node = node.setdefault(key, {})
            else:
                raise ConfigError(f"--set {path}: cannot descend into {'.'.join(keys[:i])}")
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {p}: not UTF-8 text (byte {exc.start}): is it the right file?") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {p}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if overrides:
        data = apply_overrides(data, overrides)
    return load_config_dict(data, str(p))
