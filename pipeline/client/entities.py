"""What the server describes: its identity (``GET /info``) and its models
(``GET /model/registry``), in Roboflow Inference's v1 layout; the task names and the
route of each.

Example:
    >>> reg = RegisteredModels.from_dict({"models": [{"model_id": "shapes-yolov8seg",
    ...     "task_type": "instance-segmentation", "batch_size": 8, "input_height": 640, "input_width": 640}]})
    >>> reg.models[0].task_type, reg.models[0].input_width
    ('instance-segmentation', 640)
    >>> TASK_ROUTES["keypoint-detection"]
    '/infer/keypoints_detection'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.client.errors import HTTPClientError

CLASSIFICATION_TASK = "classification"
OBJECT_DETECTION_TASK = "object-detection"
INSTANCE_SEGMENTATION_TASK = "instance-segmentation"
KEYPOINTS_DETECTION_TASK = "keypoint-detection"

#: The v1 route that takes an image for each task type.
TASK_ROUTES: dict[str, str] = {
    INSTANCE_SEGMENTATION_TASK: "/infer/instance_segmentation",
    OBJECT_DETECTION_TASK: "/infer/object_detection",
    CLASSIFICATION_TASK: "/infer/classification",
    KEYPOINTS_DETECTION_TASK: "/infer/keypoints_detection",
}


def _field(data: Mapping[str, Any], key: str, what: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise HTTPClientError(f"the server's {what} has no {key!r}: {str(data)[:200]}")
    return data[key]


@dataclass(frozen=True)
class ServerInfo:
    """``GET /info``: the server's name, version and instance id."""

    name: str
    version: str
    uuid: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerInfo:
        """From the JSON body; HTTPClientError naming a missing field."""
        return cls(*(str(_field(data, k, "/info answer")) for k in ("name", "version", "uuid")))


@dataclass(frozen=True)
class ModelDescription:
    """One loaded model: its id, task type, batch size and input size (None: not told)."""

    model_id: str
    task_type: str
    batch_size: int | str | None = None
    input_height: int | None = None
    input_width: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelDescription:
        """From one entry of the registry's ``models``."""
        return cls(str(_field(data, "model_id", "model description")), str(_field(data, "task_type", "model description")),
                   data.get("batch_size"), data.get("input_height"), data.get("input_width"))


@dataclass(frozen=True)
class RegisteredModels:
    """The models the server has loaded (``/model/registry``, and the answer of
    ``/model/add``, ``/model/remove`` and ``/model/clear``)."""

    models: list[ModelDescription]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegisteredModels:
        """From the JSON body ``{"models": [...]}``."""
        return cls([ModelDescription.from_dict(m) for m in _field(data, "models", "model registry")])

    def find(self, model_id: str) -> ModelDescription | None:
        """The description of ``model_id``, or None when it is not loaded."""
        return next((m for m in self.models if m.model_id == model_id), None)
