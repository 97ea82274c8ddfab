"""The JSON bodies of the routes, as Roboflow Inference's v1 API defines them.

Fields Roboflow clients send that vidpipe has no use for (``disable_active_learning``,
``source``, ``fix_batch_size``, ...) are accepted and ignored, as Roboflow's server does;
a known field with a bad value is a 422.

Example:
    >>> r = InferRequest.model_validate({"model_id": "m", "image": {"type": "base64", "value": "AA=="}, "confidence": 0.5})
    >>> r.images()[0].type, r.postprocess().confidence
    ('base64', 0.5)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.app.serve.errors import ServeError
from pipeline.infer.config import MaskDecodeMode, PostprocessOptions


class ImageRef(BaseModel):
    """One image: ``base64`` (bytes of an encoded image), ``url``, or Roboflow's ``numpy``
    (a pickled array, refused: unpickling runs the sender's code)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["base64", "url", "numpy"] = "base64"
    value: str = Field(min_length=1)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")
    api_key: str | None = None


class ModelRequest(_Request):
    """``/model/add`` and ``/model/remove``."""

    model_id: str = Field(min_length=1, max_length=200)


class InferRequest(_Request):
    """``/infer/{task}``: the image(s) and the post-processing, per request."""

    model_id: str = Field(min_length=1, max_length=200)
    image: ImageRef | list[ImageRef]
    confidence: float = Field(0.4, ge=0, le=1)
    iou_threshold: float = Field(0.3, ge=0, le=1)
    class_filter: list[str] | None = None
    class_agnostic_nms: bool = False
    max_detections: int = Field(300, ge=1, le=10_000)
    max_candidates: int = Field(3000, ge=1, le=100_000)
    mask_decode_mode: MaskDecodeMode = "accurate"
    tradeoff_factor: float = Field(0.5, ge=0, le=1)
    keypoint_confidence: float = Field(0.0, ge=0, le=1)
    visualize_predictions: bool = False
    visualization_labels: bool | None = None
    visualize_labels: bool | None = None
    visualization_stroke_width: int | None = Field(None, ge=1, le=50)
    stroke_width: int | None = Field(None, ge=1, le=50)
    format: Literal["roboflow", "vidpipe"] = Field("roboflow", description="vidpipe: vidpipe's detections with RLE masks")
    response_mask_format: Literal["polygon", "rle"] | None = None

    def images(self) -> list[ImageRef]:
        return self.image if isinstance(self.image, list) else [self.image]

    @property
    def batched(self) -> bool:
        """A list was sent: a list is answered (one object otherwise, as Roboflow does)."""
        return isinstance(self.image, list)

    @property
    def labels(self) -> bool:
        value = self.visualization_labels if self.visualization_labels is not None else self.visualize_labels
        return True if value is None else value

    @property
    def stroke(self) -> int:
        return self.visualization_stroke_width or self.stroke_width or 2

    def postprocess(self) -> PostprocessOptions:
        """The request's post-processing options (the model's decoder is built for them)."""
        return PostprocessOptions(confidence=self.confidence, iou_threshold=self.iou_threshold,
                                  class_filter=self.class_filter or None, class_agnostic_nms=self.class_agnostic_nms,
                                  max_detections=self.max_detections, max_candidates=self.max_candidates,
                                  mask_decode_mode=self.mask_decode_mode, tradeoff_factor=self.tradeoff_factor,
                                  keypoint_confidence=self.keypoint_confidence)


def parse_body(model: type[_Request], data: Any) -> Any:
    """``data`` validated as ``model``; the first problem as a 422 naming the field."""
    if not isinstance(data, dict):
        raise ServeError(422, "the request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        raise ServeError(422, f"invalid field {where}: {err['msg']}") from None
