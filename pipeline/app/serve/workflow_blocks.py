"""The Roboflow Workflow blocks vidpipe implements: their type names, properties (with
Roboflow's defaults, from the blocks' manifests in ``roboflow/inference``) and outputs.

A model block runs one of the server's models with its properties as post-processing
options; ``roboflow_core/byte_tracker@v1..v3`` tracks a model step's detections in a video
pipeline (ByteTrack, its options mapped onto vidpipe's ``TrackerConfig``).

Example:
    >>> block = BLOCKS["roboflow_core/roboflow_instance_segmentation_model@v2"]
    >>> block.route, block.outputs, block.properties["tradeoff_factor"]
    ('instance_segmentation', ('inference_id', 'predictions', 'model_id'), 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_DETECT = {"confidence": 0.4, "class_filter": None, "iou_threshold": 0.3, "max_detections": 300,
           "class_agnostic_nms": False, "max_candidates": 3000}
_SEGMENT = {**_DETECT, "mask_decode_mode": "accurate", "tradeoff_factor": 0.0}
_POSE = {**_DETECT, "keypoint_confidence": 0.0}
_CLASSIFY = {"confidence": 0.4}
_TRACK = {"track_activation_threshold": 0.25, "lost_track_buffer": 30, "minimum_matching_threshold": 0.8,
          "minimum_consecutive_frames": 1}

#: Properties Roboflow's model blocks have that do nothing in vidpipe (active learning, a
#: backend's mask layout): accepted, as a workflow built in Roboflow's editor carries them.
IGNORED = ("disable_active_learning", "active_learning_target_dataset", "enforce_dense_masks_in_inference_models")


@dataclass(frozen=True)
class Block:
    """One block type: ``kind`` ``model`` (``route``: the ``/infer`` route whose answers its
    ``predictions`` are) or ``tracker``; ``inputs``: its selector fields."""

    kind: str
    route: str
    properties: dict[str, Any]
    outputs: tuple[str, ...]
    inputs: tuple[str, ...]


def _model(route: str, properties: dict[str, Any], version: int) -> Block:
    outputs = ("inference_id", "predictions") + (("model_id",) if version >= 2 else ())
    return Block("model", route, {"model_id": None, **properties}, outputs, ("images",))


def _tracker(version: int) -> Block:
    extra = {"instances_cache_size": 16384} if version == 3 else {}
    outputs = ("tracked_detections",) + (("new_instances", "already_seen_instances") if version == 3 else ())
    return Block("tracker", "", {**_TRACK, **extra}, outputs, ("metadata" if version == 1 else "image", "detections"))


_FAMILIES: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "instance_segmentation": ("roboflow_core/roboflow_instance_segmentation_model", _SEGMENT,
                              ("RoboflowInstanceSegmentationModel", "InstanceSegmentationModel")),
    "object_detection": ("roboflow_core/roboflow_object_detection_model", _DETECT,
                         ("RoboflowObjectDetectionModel", "ObjectDetectionModel")),
    "keypoints_detection": ("roboflow_core/roboflow_keypoint_detection_model", _POSE,
                            ("RoboflowKeypointDetectionModel", "KeypointsDetectionModel")),
    "classification": ("roboflow_core/roboflow_classification_model", _CLASSIFY,
                       ("RoboflowClassificationModel", "ClassificationModel")),
}


def _table() -> dict[str, Block]:
    table: dict[str, Block] = {}
    for route, (name, props, aliases) in _FAMILIES.items():
        for version in (1, 2):
            table[f"{name}@v{version}"] = _model(route, props, version)
        for alias in aliases:  # v1's old names, still valid in Roboflow's manifests
            table[alias] = table[f"{name}@v1"]
    for version in (1, 2, 3):
        table[f"roboflow_core/byte_tracker@v{version}"] = _tracker(version)
    return table


#: Every block type vidpipe runs, by its ``type`` in a Workflow spec.
BLOCKS: dict[str, Block] = _table()


def tracker_options(props: dict[str, Any]) -> dict[str, Any]:
    """A ByteTrack block's bound properties as ``TrackerConfig`` fields (supervision's
    ByteTrack: ``lost_track_buffer`` frames at 30 fps; a new track needs its activation
    threshold plus 0.1, as supervision's ``det_thresh``).

    >>> tracker_options(dict(_TRACK))["lost_track_seconds"]
    1.0
    """
    high = float(props["track_activation_threshold"])
    return {"type": "bytetrack", "track_high_threshold": high, "new_track_threshold": min(1.0, high + 0.1),
            "match_threshold": float(props["minimum_matching_threshold"]),
            "lost_track_seconds": max(int(props["lost_track_buffer"]), 1) / 30.0,
            "minimum_consecutive_frames": int(props["minimum_consecutive_frames"])}
