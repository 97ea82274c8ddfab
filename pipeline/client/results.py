"""A server's answer as vidpipe's :class:`~pipeline.vision.result.Result`, its
:class:`~pipeline.vision.detections.Detections` or ``supervision.Detections``.

The answer (Roboflow's layout: ``image`` + ``predictions``; vidpipe's: ``image`` +
``detections``; or a ``vidpipe.result/1`` record) is read as a record of that format and
rebuilt by :func:`sinks.from_record.detections_from_record`: masks sent as ``rle`` come back exact,
``points`` polygons come back without masks. vision and sinks are imported on first use,
so importing the client loads no Numba.

Example:
    >>> answer = {"image": {"width": 64, "height": 48}, "predictions": [
    ...     {"x": 20.0, "y": 10.0, "width": 8.0, "height": 4.0, "confidence": 0.9, "class": "circle", "class_id": 0}]}
    >>> dets = to_detections(answer)
    >>> dets.xyxy.tolist(), dets.class_names
    ([[16.0, 8.0, 24.0, 12.0]], ['circle'])
    >>> to_result(answer, stream_id="cam0", frame_index=3).frame_index
    3
    >>> to_detections({"image": {"width": 64, "height": 48}, "detections": [{"score": 0.9, "category": "circle",
    ...     "class_id": 0, "bounding-box": {"left": 16, "top": 8, "width": 8, "height": 4}}]}).xyxy.tolist()
    [[16.0, 8.0, 24.0, 12.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.client.errors import HTTPClientError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import supervision as sv

    from pipeline.vision.detections import Detections
    from pipeline.vision.result import Result

SCHEMA = "vidpipe.result/1"  # pipeline.wire.records.SCHEMA, without importing the codecs up front


def _keypoint_names(predictions: Any) -> list[str] | None:
    """Roboflow names each keypoint in every prediction; the record names them once."""
    if isinstance(predictions, list) and predictions and isinstance(predictions[0], dict):
        kps = predictions[0].get("keypoints")
        if isinstance(kps, list) and kps and all(isinstance(k, dict) and "class" in k for k in kps):
            return [str(k["class"]) for k in kps]
    return None


def as_record(prediction: dict[str, Any], stream_id: str = "http", frame_index: int = 0) -> dict[str, Any]:
    """The answer as a ``vidpipe.result/1`` record (a record stays as it is)."""
    if not isinstance(prediction, dict):
        raise HTTPClientError(f"expected one answer (a JSON object), got {type(prediction).__name__}")
    if prediction.get("schema") == SCHEMA:
        return prediction
    image = prediction.get("image")
    if not isinstance(image, dict) or "width" not in image or "height" not in image:
        raise HTTPClientError("the answer has no image size ('image': {'width', 'height'})")
    # vidpipe serve answers vidpipe's own layout (``detections``) to ``"format": "vidpipe"``
    fmt = "vidpipe" if "detections" in prediction and "predictions" not in prediction else "roboflow"
    record = {**prediction, "schema": SCHEMA, "stream": stream_id, "frame": frame_index, "format": fmt,
              "width": image["width"], "height": image["height"]}
    names = _keypoint_names(prediction.get("predictions"))
    if names is not None and "keypoint_names" not in record:
        record["keypoint_names"] = names
    return record


def to_detections(prediction: dict[str, Any]) -> Detections:
    """The answer's detections (boxes, RLE masks cropped to boxes, keypoints, a
    classification); a malformed answer raises ``WireError`` naming the field."""
    from sinks.from_record import detections_from_record

    return detections_from_record(as_record(prediction))


def to_result(prediction: dict[str, Any], stream_id: str = "http", frame_index: int = 0, model: str | None = None,
              image: np.ndarray | None = None, source_path: str | None = None) -> Result:
    """The answer as a :class:`Result` of ``stream_id``/``frame_index`` (``model``: the
    model id; ``image``: the frame, for annotating sinks)."""
    from pipeline.vision.result import Result

    record = as_record(prediction, stream_id, frame_index)
    dets = to_detections(record)
    time_s = prediction.get("time")
    timings = {"server": round(float(time_s) * 1000, 3)} if isinstance(time_s, (int, float)) else {}
    h, w = dets.image_hw
    return Result(stream_id, frame_index, None, 0.0, w, h, model or str(record.get("model", "")), dets,
                  timings=timings, image=image, source_path=source_path)


def to_supervision(prediction: dict[str, Any], masks: bool = True) -> sv.Detections:
    """The answer as ``supervision.Detections`` (class names in ``data['class_name']``)."""
    detections: sv.Detections = to_detections(prediction).to_supervision(masks=masks)
    return detections
