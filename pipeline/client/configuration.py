"""``InferenceConfiguration``: the request options of Roboflow's v1 protocol that vidpipe
serves (thresholds, class filter, NMS, mask decoding, visualisation) and the client's own
(parallel and batched requests, client-side downsizing, how the API key travels).

:meth:`InferenceConfiguration.to_request_fields` writes the JSON fields each task's route
reads, under the names Roboflow's server and ``inference-sdk`` use; a field left None is
not sent, so the server's default applies.

Example:
    >>> cfg = InferenceConfiguration(confidence_threshold=0.5, class_filter=["circle"], mask_decode_mode="fast")
    >>> cfg.to_request_fields("instance-segmentation")
    {'class_filter': ['circle'], 'confidence': 0.5, 'mask_decode_mode': 'fast', 'visualize_predictions': False}
    >>> cfg.to_request_fields("classification")
    {'confidence': 0.5, 'visualize_predictions': False}
    >>> InferenceConfiguration(max_batch_size=0)
    Traceback (most recent call last):
    ...
    pipeline.client.errors.InvalidParameterError: max_batch_size must be at least 1, got 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.client.entities import (
    CLASSIFICATION_TASK,
    INSTANCE_SEGMENTATION_TASK,
    KEYPOINTS_DETECTION_TASK,
    OBJECT_DETECTION_TASK,
)
from pipeline.client.errors import InvalidParameterError

DEFAULT_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "webp")
DEFAULT_MAX_INPUT_SIZE = 1024

# (attribute, wire name) per task, as Roboflow's v1 routes read them.
_DETECTION_FIELDS = [
    ("class_agnostic_nms", "class_agnostic_nms"), ("class_filter", "class_filter"),
    ("confidence_threshold", "confidence"), ("iou_threshold", "iou_threshold"),
    ("max_detections", "max_detections"), ("max_candidates", "max_candidates"),
    ("visualize_labels", "visualization_labels"), ("stroke_width", "visualization_stroke_width"),
    ("visualize_predictions", "visualize_predictions"),
]
_TASK_FIELDS = {
    OBJECT_DETECTION_TASK: _DETECTION_FIELDS,
    INSTANCE_SEGMENTATION_TASK: _DETECTION_FIELDS + [
        ("mask_decode_mode", "mask_decode_mode"), ("tradeoff_factor", "tradeoff_factor"),
        ("response_mask_format", "response_mask_format"),
    ],
    KEYPOINTS_DETECTION_TASK: _DETECTION_FIELDS + [("keypoint_confidence_threshold", "keypoint_confidence")],
    CLASSIFICATION_TASK: [
        ("confidence_threshold", "confidence"), ("visualize_predictions", "visualize_predictions"),
        ("stroke_width", "visualization_stroke_width"),
    ],
}
_CHOICES: dict[str, tuple[Any, ...]] = {
    "mask_decode_mode": (None, "accurate", "tradeoff", "fast"),
    "response_mask_format": (None, "polygon", "rle"),
    "output_visualisation_format": ("base64", "numpy", "pillow"),
    "api_key_transport": ("legacy", "both", "header"),
    "image_encoding": ("jpeg", "png"),
}


@dataclass(frozen=True)
class InferenceConfiguration:
    """Options of each inference request, and how the client sends them.

    Request options (None: the server's default): ``confidence_threshold``,
    ``iou_threshold``, ``class_filter`` (class names), ``class_agnostic_nms``,
    ``max_detections``, ``max_candidates``, ``keypoint_confidence_threshold``,
    ``mask_decode_mode`` (accurate | tradeoff | fast) with ``tradeoff_factor``,
    ``response_mask_format`` (polygon | rle: ``rle`` keeps masks exact),
    ``visualize_predictions`` / ``visualize_labels`` / ``stroke_width`` (the server draws
    the predictions and returns the image as ``visualization``).

    Client options: ``output_visualisation_format`` (base64 | numpy | pillow),
    ``image_extensions_for_directory_scan``, ``client_downsizing_disabled`` (False: images
    larger than the model's input are shrunk before sending and the predictions scaled
    back; ``default_max_input_size`` when the model does not tell its size),
    ``max_concurrent_requests`` (requests in flight for one call), ``max_batch_size``
    (images per request), ``image_encoding`` of arrays and PIL images (jpeg as
    ``inference-sdk``, or png: lossless), ``api_key_transport`` (legacy: JSON body and
    query; header: ``Authorization: Bearer``; both), ``timeout_s`` per request, and
    ``max_retries`` / ``retry_interval_s``: an inference request the server answers 429,
    503 or 504 (busy), or that cannot reach it, is tried again (as ``inference-sdk``: 3
    tries, 1 s apart).
    """

    confidence_threshold: float | None = None
    keypoint_confidence_threshold: float | None = None
    mask_decode_mode: Literal["accurate", "tradeoff", "fast"] | None = None
    tradeoff_factor: float | None = None
    max_candidates: int | None = None
    max_detections: int | None = None
    iou_threshold: float | None = None
    stroke_width: int | None = None
    class_agnostic_nms: bool | None = None
    class_filter: list[str] | None = None
    visualize_predictions: bool = False
    visualize_labels: bool | None = None
    response_mask_format: Literal["polygon", "rle"] | None = None
    output_visualisation_format: Literal["base64", "numpy", "pillow"] = "base64"
    image_extensions_for_directory_scan: tuple[str, ...] = field(default=DEFAULT_IMAGE_EXTENSIONS)
    client_downsizing_disabled: bool = True
    default_max_input_size: int = DEFAULT_MAX_INPUT_SIZE
    max_concurrent_requests: int = 1
    max_batch_size: int = 1
    image_encoding: Literal["jpeg", "png"] = "jpeg"
    api_key_transport: Literal["legacy", "both", "header"] = "both"
    timeout_s: float = 60.0
    max_retries: int = 2
    retry_interval_s: float = 1.0

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise InvalidParameterError(f"{name} must be one of {[c for c in choices if c]}, got {getattr(self, name)!r}")
        if self.max_retries < 0 or self.retry_interval_s < 0:
            raise InvalidParameterError(f"max_retries and retry_interval_s must not be negative, got "
                                        f"{self.max_retries} and {self.retry_interval_s}")
        for name in ("max_concurrent_requests", "max_batch_size", "default_max_input_size"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("confidence_threshold", "iou_threshold", "keypoint_confidence_threshold", "tradeoff_factor"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise InvalidParameterError(f"{name} must be within [0, 1], got {value}")
        if self.timeout_s <= 0:
            raise InvalidParameterError(f"timeout_s must be positive, got {self.timeout_s}")

    @classmethod
    def init_default(cls) -> InferenceConfiguration:
        """The defaults (as ``inference-sdk``'s ``init_default``)."""
        return cls()

    def to_request_fields(self, task_type: str) -> dict[str, Any]:
        """The JSON fields of an inference request to the route of ``task_type`` (options
        left None are not sent)."""
        out: dict[str, Any] = {}
        for attribute, wire_name in sorted(_TASK_FIELDS.get(task_type, []), key=lambda f: f[1]):
            value = getattr(self, attribute)
            if value is not None:
                out[wire_name] = list(value) if isinstance(value, (list, tuple)) else value
        return out
