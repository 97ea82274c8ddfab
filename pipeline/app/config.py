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
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.errors import ConfigError
from pipeline.core.redact import redact_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileSourceConfig(_Strict):
    type: Literal["file"]
    path: Path
    realtime: bool = Field(False, description="pace at the file's frame rate, like a camera (live rings)")
    loop: bool = Field(False, description="start over at the end; pts and frame indices keep increasing")
    start_seconds: float = Field(0.0, ge=0, description="seek here first")


class ImagesSourceConfig(_Strict):
    type: Literal["images"]
    path: Path
    fps: float | None = Field(None, gt=0, description="pts = index / fps when set")


class SyntheticSourceConfig(_Strict):
    type: Literal["synthetic"]
    seed: int = 0
    frames: int | None = Field(300, ge=1, description="None: until stopped")
    width: int = Field(1280, ge=16)
    height: int = Field(720, ge=16)
    fps: float = Field(30.0, gt=0)
    realtime: bool = False


class _LiveBase(_Strict):
    open_timeout: float = Field(5.0, gt=0, description="seconds to connect")
    stall_timeout: float = Field(5.0, gt=0, description="no packet for this long: reconnect (watchdog)")
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(10.0, gt=0)
    backoff_jitter: float = Field(0.25, ge=0, le=1)
    max_attempts: int | None = Field(None, ge=1, description="None: retry forever")
    options: dict[str, str] = Field(default_factory=dict, description="extra FFmpeg options")


class RtspSourceConfig(_LiveBase):
    type: Literal["rtsp"]
    url: str = Field(description="rtsp://[user:pass@]host[:port]/path (credentials are redacted everywhere)")
    rtsp_transport: Literal["tcp", "udp"] = "tcp"


class UrlSourceConfig(_LiveBase):
    type: Literal["url"]
    url: str = Field(description="http(s)://, HLS .m3u8, rtmp://, udp://, srt:// ... through PyAV")


class WebcamSourceConfig(_LiveBase):
    type: Literal["webcam"]
    device: str = "/dev/video0"
    input_format: str = Field("v4l2", description="FFmpeg input device format")
    video_size: str | None = Field(None, description="e.g. 1280x720")
    framerate: float | None = Field(None, gt=0)


SourceConfig = Annotated[
    FileSourceConfig | ImagesSourceConfig | SyntheticSourceConfig | RtspSourceConfig | UrlSourceConfig | WebcamSourceConfig,
    Field(discriminator="type"),
]

RingPolicy = Literal["block", "drop_oldest", "drop_newest"]
# FFmpeg's hardware device types (av.codec.hwaccel.hwdevices_available() lists what this build has).
HwAccel = Literal["cuda", "vaapi", "qsv", "vdpau", "videotoolbox", "d3d11va", "dxva2", "drm", "opencl", "vulkan", "mediacodec"]


class StreamConfig(_Strict):
    id: str = Field(min_length=1)
    source: SourceConfig
    ring_policy: RingPolicy | None = Field(None, description="frame ring policy; default: block for files, drop_oldest for live")
    infer_interval: int = Field(1, ge=1, description="inference on every N-th frame; the tracker carries the frames between")
    max_fps: float | None = Field(None, gt=0, description="keep evenly spaced frames up to this rate (the rest: drops 'max_fps')")
    hwaccel: HwAccel | None = Field(None, description="hardware decoding (cuda: NVDEC); falls back to software where unavailable")
    hwaccel_device: str | None = Field(None, description="the device, e.g. '1' for the second GPU; default: the first")


class PostprocessConfig(_Strict):
    confidence: float = Field(0.4, ge=0, le=1)
    iou_threshold: float = Field(0.3, ge=0, le=1)
    class_agnostic_nms: bool = False
    max_detections: int = Field(300, ge=1)
    max_candidates: int = Field(3000, ge=1)
    class_filter: list[str] | None = None
    mask_decode_mode: Literal["accurate", "tradeoff", "fast"] = "accurate"
    tradeoff_factor: float = Field(0.5, ge=0, le=1)
    max_area_ratio: float | None = Field(None, gt=0, le=1)
    device: Literal["cpu", "cuda"] = Field("cpu", description="cuda: candidate selection and mask decoding on the GPU "
                                           "(falls back to the CPU with a warning where there is none)")


class ModelConfig(_Strict):
    path: str = Field("shapes-yolov8seg", description="bundled model name or path to an ONNX file")
    name: str | None = None
    backend: Literal["onnxruntime", "tensorrt"] = Field("onnxruntime", description="tensorrt: native TensorRT (extra [trt])")
    providers: list[str | tuple[str, dict[str, Any]]] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="ONNX Runtime execution providers in order of preference, e.g. [TensorrtExecutionProvider, "
                    "CUDAExecutionProvider, CPUExecutionProvider]; [name, {options}] sets a provider's own options")
    device_id: int = Field(0, ge=0, description="GPU for the CUDA/TensorRT providers and the TensorRT backend")
    fp16: bool = Field(False, description="TensorRT (provider or backend): build FP16 engines")
    engine_cache_dir: Path | None = Field(None, description="TensorRT engines are cached here (default ~/.cache/vidpipe/engines)")
    workspace_gb: float = Field(4.0, gt=0, description="TensorRT builder workspace")
    io_binding: bool | None = Field(None, description="ONNX Runtime I/O binding; default: on with a GPU provider")
    intra_op_threads: int | None = Field(None, ge=1)
    inter_op_threads: int | None = Field(None, ge=1)
    names_file: Path | None = None
    layout: Literal["yolov5-seg", "yolov8-seg", "yolov5", "yolov8"] | None = None
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)


class TrackerConfig(_Strict):
    type: Literal["bytetrack", "none"] = "bytetrack"
    track_high_threshold: float = Field(0.5, ge=0, le=1)
    track_low_threshold: float = Field(0.1, ge=0, le=1)
    new_track_threshold: float = Field(0.6, ge=0, le=1)
    match_threshold: float = Field(0.8, ge=0, le=1, description="max 1 - IoU of a match")
    lost_track_seconds: float = Field(1.0, gt=0, description="converted to frames with the stream's fps")
    minimum_consecutive_frames: int = Field(2, ge=1, description="matched frames in a row before an id is issued")
    mask_iou: bool = Field(False, description="match on mask IoU instead of box IoU (slower)")
    carry_masks: bool = Field(True, description="infer_interval frames: last mask scaled to the box (false: no masks)")
    reset_on_reconnect: bool = False


class BatchingConfig(_Strict):
    max_batch_size: int = Field(1, ge=1)
    max_wait_ms: float = Field(10.0, ge=0)


OutputFormat = Literal["vidpipe", "roboflow", "instill"]
MaskFormat = Literal["rle", "polygon", "bitmask", "none"]


class _SinkBase(_Strict):
    fail_fast: bool = Field(False, description="a failure of this sink stops the pipeline (else: logged, counted)")


class JsonlSinkConfig(_SinkBase):
    type: Literal["jsonl"]
    path: Path
    format: OutputFormat = "vidpipe"
    mask_format: MaskFormat = "rle"
    polygon_precision: float = Field(1.0, ge=0)
    flush_every: int = Field(1, ge=1)


class CurveServerConfig(_Strict):
    server_secret_key: Path = Field(description="server.key_secret from `vidpipe keys generate`")
    allowed_clients: Path = Field(description="folder of allowed clients' public keys (*.key)")


class ZmqSinkConfig(_SinkBase):
    type: Literal["zmq"]
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
    curve: CurveServerConfig | None = None


class VideoSinkConfig(_SinkBase):
    type: Literal["video"]
    path: str = Field(description="mp4 path; '{stream}' is replaced by the stream id (needed for several streams)")
    fps: float = Field(30.0, gt=0)
    crf: int = Field(23, ge=0, le=51)
    masks: bool = True
    boxes: bool = True
    labels: bool = True
    traces: bool = True
    lossless: bool = True


class MasksSinkConfig(_SinkBase):
    type: Literal["masks"]
    path: str = "out/masks/{stream}/{frame:06d}.png"


class CallbackSinkConfig(_SinkBase):
    type: Literal["callback"]
    target: str = Field(description="'package.module:function', called with every Result")
    lossless: bool = True


SinkConfig = Annotated[JsonlSinkConfig | ZmqSinkConfig | VideoSinkConfig | MasksSinkConfig | CallbackSinkConfig,
                       Field(discriminator="type")]


class RingsConfig(_Strict):
    packets: int = Field(64, ge=1)
    frames: int = Field(4, ge=1)
    results: int = Field(32, ge=1)
    sink: int = Field(64, ge=1)


class MetricsConfig(_Strict):
    port: int = Field(9100, ge=0, le=65535, description="Prometheus endpoint port (0: any free port)")
    host: str = Field("127.0.0.1", description="bind address; 127.0.0.1 keeps it on this machine")


class PipelineConfig(_Strict):
    name: str = "vidpipe"
    streams: list[StreamConfig] = Field(min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    tracker: TrackerConfig | None = Field(None, description="null: no tracking (track_id -1)")
    sinks: list[SinkConfig] = Field(default_factory=list)
    rings: RingsConfig = Field(default_factory=RingsConfig)
    metrics: MetricsConfig | None = Field(None, description="serve Prometheus metrics while running")
    decoder_threads: int = Field(0, ge=0, description="0: FFmpeg picks")

    @field_validator("streams")
    @classmethod
    def _unique_ids(cls, streams: list[StreamConfig]) -> list[StreamConfig]:
        ids = [s.id for s in streams]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"stream ids must be unique, repeated: {dupes}")
        return streams

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


def _format_error(exc: ValidationError, origin: str) -> str:
    errors = exc.errors()
    first = errors[0]
    tags = ("file", "images", "synthetic", "rtsp", "url", "webcam", "jsonl", "zmq", "video", "masks", "callback")
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and p in tags))
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
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, origin)) from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``--set path=value``: dotted path (list indices as numbers), value parsed as YAML."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects path=value, got {item!r}")
        path, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
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
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {p}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if overrides:
        data = apply_overrides(data, overrides)
    return load_config_dict(data, str(p))
