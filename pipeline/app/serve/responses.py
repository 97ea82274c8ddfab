"""One image's answer, in Roboflow Inference's layout (``format: roboflow``, the default)
or vidpipe's (``format: vidpipe``: ``detections`` with COCO RLE masks, as ``vidpipe.result/1``).

Roboflow's layout: ``inference_id``, ``time`` (seconds), ``image`` ``{width, height}``,
``predictions`` (centre x/y, size, class, confidence; ``points`` of a mask's outer contour,
or ``rle`` with ``response_mask_format: rle``; ``keypoints`` for pose), ``visualization``
(base64 JPEG or null); a classification answers ``predictions``, ``top`` and ``confidence``.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline.wire.formats import roboflow_predictions, vidpipe_detections
from pipeline.wire.tasks import task_fields

#: The /infer/{task} routes and the model tasks each serves.
ROUTE_TASKS = {
    "instance_segmentation": ("segment",),
    "object_detection": ("detect", "segment"),
    "keypoints_detection": ("pose",),
    "classification": ("classify",),
}


def mask_format(route: str, requested: str | None) -> str:
    """Masks only where the route returns them: Roboflow's ``points`` unless ``rle`` was asked."""
    if route != "instance_segmentation":
        return "none"
    return requested or "polygon"


def prediction(dets: Any, width: int, height: int, route: str, fmt: str, requested_masks: str | None,
               seconds: float, visualization: str | None, model_id: str) -> dict[str, Any]:
    """The JSON object answered for one image."""
    head: dict[str, Any] = {"inference_id": str(uuid.uuid4()), "time": round(seconds, 6),
                            "image": {"width": width, "height": height}}
    if fmt == "vidpipe":
        masks = "rle" if route == "instance_segmentation" else "none"
        return {**head, "model": model_id, "detections": vidpipe_detections(dets, masks),
                **task_fields(dets, "vidpipe"), "visualization": visualization}
    body = {**head, "predictions": roboflow_predictions(dets, mask_format(route, requested_masks)),
            **task_fields(dets, "roboflow")}
    body.pop("keypoint_names", None)  # vidpipe's envelope field: Roboflow names each keypoint in place
    return {**body, "visualization": visualization, "frame_id": None}
