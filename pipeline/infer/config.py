"""Model, post-processing and batching options (the ``model`` and ``batching`` sections).

Example:
    >>> PostprocessOptions(confidence=0.5).mask_decode_mode
    'accurate'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator

from pipeline.core.options import Options

# ultralytics: Ultralytics' own interpolation exactly (NumPy, slower: for parity checks)
MaskDecodeMode = Literal["accurate", "tradeoff", "fast", "ultralytics"]
LayoutName = Literal["yolov5-seg", "yolov8-seg", "yolov5", "yolov8", "yolov8-pose", "end2end", "end2end-seg",
                     "end2end-pose", "classify", "semantic", "semantic-logits"]


class PostprocessOptions(Options):
    """Every option of the post-processing, as in Roboflow's instance segmentation block."""

    confidence: float = Field(0.4, ge=0, le=1)
    iou_threshold: float = Field(0.3, ge=0, le=1)
    class_agnostic_nms: bool = False
    max_detections: int = Field(300, ge=1)
    max_candidates: int = Field(3000, ge=1)
    class_filter: list[str] | None = None
    mask_decode_mode: MaskDecodeMode = "accurate"
    tradeoff_factor: float = Field(0.5, ge=0, le=1)
    max_area_ratio: float | None = Field(None, gt=0, le=1)
    min_area_ratio: float | None = Field(None, ge=0, lt=1, description="drop boxes smaller than this share of the frame")
    drop_empty_masks: bool = Field(False, description="segmentation: leave out detections whose mask has no pixel, "
                                                      "as Ultralytics' predictor does")
    keypoint_confidence: float = Field(
        0.0, ge=0, le=1, description="pose: a keypoint below this confidence gets confidence 0, i.e. absent (Roboflow's "
                                     "keypoint_confidence_threshold leaves such keypoints out of its response)")
    top_k: int = Field(5, ge=1, description="classification: the best k classes per frame (at or above `confidence`)")
    classification_window: int = Field(
        1, ge=1, description="classification: top-k of the mean probabilities over the last N inferred frames of "
                             "each stream (temporal smoothing; 1: off)")
    device: Literal["cpu", "cuda"] = Field("cpu", description="cuda: candidate selection and mask decoding on the GPU "
                                           "(falls back to the CPU with a warning where there is none)")


ProviderSpec = str | tuple[str, dict[str, Any]]  # a provider's name, or its name and its own options


class BackendOptions(Options):
    """What the inference backend is told: providers, threads, GPU and TensorRT settings."""

    providers: list[ProviderSpec] = Field(
        default_factory=lambda: list[ProviderSpec](["CPUExecutionProvider"]),
        description="ONNX Runtime execution providers in order of preference, e.g. [TensorrtExecutionProvider, "
                    "CUDAExecutionProvider, CPUExecutionProvider]; [name, {options}] sets a provider's own options")
    device_id: int = Field(0, ge=0, description="GPU for the CUDA/TensorRT providers and the TensorRT backend")
    fp16: bool = Field(False, description="TensorRT (provider or backend): build FP16 engines")
    engine_cache_dir: Path | None = Field(None, description="TensorRT engines are cached here (default ~/.cache/vidpipe/engines)")
    workspace_gb: float = Field(4.0, gt=0, description="TensorRT builder workspace")
    io_binding: bool | None = Field(None, description="ONNX Runtime I/O binding; default: on with a GPU provider")
    intra_op_threads: int | None = Field(None, ge=1)
    inter_op_threads: int | None = Field(None, ge=1)
    allow_spinning: bool | None = Field(
        False, description="ONNX Runtime's CPU threads spin while they wait for work. Off (the default): they sleep, "
                           "so decoding, sinks, the HTTP server and other models get the cores they would burn: the "
                           "same or more fps on ~10 % less CPU in pipelines, and the same or lower latency in serve "
                           "(benchmarks/RESULTS.md, video; hand-recorded notes); a model timed on its own is ~9 % "
                           "slower. true: they spin; null: ONNX Runtime's own default (spinning)")
    imgsz: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="input size of a model whose height and width are dynamic (Ultralytics' imgsz): a number "
                          "for a square, or [height, width], multiples of the model's stride. Larger finds smaller "
                          "objects and draws finer masks at more time per frame (960 on 1280x720 video: 960x544 with "
                          "rect, 2.1x the pixels of 640's 640x384). Default: the model's imgsz metadata, else 640. A "
                          "model with a fixed input runs at that size only; TensorRT builds its engine at this size")
    rect: bool | None = Field(
        None, description="feed each frame at the smallest input that holds it, sides multiples of the model's stride "
                          "(Ultralytics' rect: 16:9 video in 384x640, not 640x640; same scale, fewer pixels); frames "
                          "of different input sizes run as separate batches. Default: on where the model's input height "
                          "and width are dynamic, its stride is in its metadata, and ONNX Runtime runs on the CPU (GPU "
                          "providers tune per shape; TensorRT engines are built for one)")

    @field_validator("imgsz", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        """``960`` means ``[960, 960]``, as in Ultralytics."""
        return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value


class ModelConfig(BackendOptions):
    """The ``model`` section: which file, which backend, how its outputs are read and post-processed."""

    path: str = Field("shapes-yolov8seg", description="bundled model name or path to an ONNX file")
    name: str | None = None
    backend: Literal["onnxruntime", "tensorrt"] = Field("onnxruntime", description="tensorrt: native TensorRT (extra [trt])")
    names_file: Path | None = None
    layout: LayoutName | None = Field(None, description="force an output layout (default: recognised from the outputs)")
    kpt_shape: tuple[int, int] | None = Field(
        None, description="pose: keypoints per detection and values per keypoint (2: x, y; 3: x, y, confidence), "
                          "where the model's metadata has no kpt_shape")
    keypoint_names: list[str] | None = Field(None, description="pose: a name per keypoint (default: the metadata's "
                                                               "kpt_names; COCO's for 17 keypoints)")
    keypoint_names_file: Path | None = Field(None, description="pose: keypoint names from a file, in the forms of "
                                                               "names_file")
    postprocess: PostprocessOptions = Field(default_factory=PostprocessOptions)


class BatchingConfig(Options):
    """Frames of all streams bound to a model are batched up to ``max_batch_size``; a batch
    goes when full or ``max_wait_ms`` after its first frame (DeepStream's stream muxer)."""

    max_batch_size: int = Field(1, ge=1)
    max_wait_ms: float = Field(10.0, ge=0)
