"""Roboflow Workflow specs for the tests: the seed's instance-segmentation block, v1 and v2,
every property set, some bound to ``$inputs`` parameters (as Roboflow's editor writes them)."""

from __future__ import annotations

from typing import Any

SEG = "roboflow_core/roboflow_instance_segmentation_model@v{}"
#: Every property of the seed block and the value the tests give it.
PROPS: dict[str, Any] = {"model_id": "shapes-yolov8seg", "confidence": 0.3, "class_filter": ["circle", "triangle"],
                         "iou_threshold": 0.45, "max_detections": 50, "class_agnostic_nms": True,
                         "max_candidates": 2000, "mask_decode_mode": "tradeoff", "tradeoff_factor": 0.25}
#: Those bound to parameters (the rest are literals in the step).
BOUND = ("model_id", "confidence", "class_filter", "mask_decode_mode")


def seg_spec(version: int, bound: tuple[str, ...] = BOUND, **step: Any) -> dict[str, Any]:
    """The spec, with ``bound`` properties as ``$inputs.NAME`` (NAME: the property's name)."""
    inputs: list[dict[str, Any]] = [{"type": "WorkflowImage", "name": "image"}]
    inputs += [{"type": "WorkflowParameter", "name": p} for p in bound]
    props = {p: (f"$inputs.{p}" if p in bound else v) for p, v in PROPS.items()}
    outputs = [{"type": "JsonField", "name": "predictions", "selector": "$steps.seg.predictions"},
               {"type": "JsonField", "name": "all", "selector": "$steps.seg.*"}]
    return {"version": "1.0", "inputs": inputs,
            "steps": [{"type": SEG.format(version), "name": "seg", "images": "$inputs.image", **props,
                       "disable_active_learning": True, **step}],
            "outputs": outputs}


def parameters(bound: tuple[str, ...] = BOUND) -> dict[str, Any]:
    return {p: PROPS[p] for p in bound}


def infer_body() -> dict[str, Any]:
    """The same options as an /infer/instance_segmentation request."""
    return {k: v for k, v in PROPS.items()}
