"""Roboflow Workflow specs compiled for vidpipe: inputs, steps of the blocks vidpipe runs
(:mod:`pipeline.app.serve.workflow_blocks`), ``JsonField`` outputs, and each step's
properties bound to the request's parameters (``$inputs.NAME``).

Everything is checked before anything runs: an unknown block, input type or property, a
selector to an input, step or output that does not exist, is a 422 naming it and where.

Example:
    >>> wf = compile_workflow({"version": "1.0", "inputs": [{"type": "WorkflowImage", "name": "image"},
    ...     {"type": "WorkflowParameter", "name": "conf", "default_value": 0.5}],
    ...     "steps": [{"type": "roboflow_core/roboflow_instance_segmentation_model@v2", "name": "seg",
    ...                "images": "$inputs.image", "model_id": "shapes-yolov8seg", "confidence": "$inputs.conf"}],
    ...     "outputs": [{"type": "JsonField", "name": "out", "selector": "$steps.seg.predictions"}]})
    >>> wf.postprocess("seg", wf.bind({"conf": 0.25})["seg"]).confidence, wf.bind({})["seg"]["model_id"]
    (0.25, 'shapes-yolov8seg')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.workflow_blocks import BLOCKS, IGNORED, Block
from pipeline.infer.config import PostprocessOptions

IMAGE_INPUTS = ("WorkflowImage", "InferenceImage")
PARAMETER_INPUTS = ("WorkflowParameter", "InferenceParameter")
METADATA_INPUTS = ("WorkflowVideoMetadata",)


def bad(message: str) -> ServeError:
    """A spec or binding problem: 422, one line."""
    return ServeError(422, f"workflow: {message}")


@dataclass(frozen=True)
class Step:
    """One step: its block, its properties as written (literals or ``$inputs.*``), its selectors."""

    name: str
    type: str
    block: Block
    values: dict[str, Any]
    selectors: dict[str, str]


@dataclass
class Workflow:
    """A compiled spec; ``bind`` resolves the steps' properties for one request's parameters."""

    images: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    metadata: list[str] = field(default_factory=list)
    steps: dict[str, Step] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Step]:
        return [s for s in self.steps.values() if s.block.kind == kind]

    def bind(self, given: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Each step's properties with ``$inputs.*`` replaced: the request's value, else the
        input's ``default_value``, else the block's default (Roboflow passes None on, and its
        blocks fall back to their defaults); a model step without a ``model_id`` is a 422."""
        bound: dict[str, dict[str, Any]] = {}
        for step in self.steps.values():
            props = dict(step.block.properties)
            for prop, value in step.values.items():
                if isinstance(value, str) and value.startswith("$inputs."):
                    name = value[len("$inputs."):]
                    value = given.get(name, self.parameters[name])
                if value is not None:
                    props[prop] = value
            if step.block.kind == "model" and not isinstance(props.get("model_id"), str):
                raise bad(f"step {step.name}: model_id is not given (a string, or $inputs.NAME with a value)")
            bound[step.name] = props
        return bound

    def postprocess(self, step: str, props: dict[str, Any]) -> PostprocessOptions:
        """A model step's bound properties as vidpipe's post-processing options (each
        property is the option of the same name)."""
        options = {k: v for k, v in props.items() if k != "model_id"}
        try:
            return PostprocessOptions.model_validate(options)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise bad(f"step {step}: invalid {where}: {err['msg']} (got {err.get('input')!r})") from None


def _named(items: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise bad(f"'{what}' must be a list of objects")
    names = [i.get("name") for i in items]
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise bad(f"{what}[{i}] has no name")
        if names.count(name) > 1:
            raise bad(f"two {what} are named {name!r}")
    return items


def _inputs(wf: Workflow, items: Any) -> None:
    for item in _named(items, "inputs"):
        kind, name = item.get("type"), item["name"]
        if kind in IMAGE_INPUTS:
            wf.images.append(name)
        elif kind in PARAMETER_INPUTS:
            wf.parameters[name] = item.get("default_value")
        elif kind in METADATA_INPUTS:
            wf.metadata.append(name)
        else:
            raise bad(f"input {name}: unknown type {kind!r} (one of {', '.join(IMAGE_INPUTS + PARAMETER_INPUTS + METADATA_INPUTS)})")


def _selector(wf: Workflow, step: str, prop: str, value: Any, block: Block) -> str:
    """A step's selector field (``images``, ``detections``, ``image``, ``metadata``), checked."""
    where = f"{step}.{prop}"
    if not isinstance(value, str):
        raise bad(f"{where}: a selector ($inputs.NAME or $steps.NAME.OUTPUT) is needed, got {value!r}")
    if prop == "detections":
        parts = value.split(".")
        source = wf.steps.get(parts[1]) if len(parts) == 3 and parts[0] == "$steps" else None
        if source is None or source.block.kind != "model" or parts[2] != "predictions":
            raise bad(f"bad binding {value} in {where}: not the predictions of an earlier model step")
        return value
    allowed = wf.metadata if prop == "metadata" else wf.images
    if value.startswith("$inputs.") and value[len("$inputs."):] in allowed:
        return value
    raise bad(f"bad binding {value} in {where}: not an {'video metadata' if prop == 'metadata' else 'image'} input "
              f"(inputs: {', '.join(allowed) or 'none'})")


def _property(wf: Workflow, where: str, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("$inputs."):
        if value[len("$inputs."):] not in wf.parameters:
            raise bad(f"bad binding {value} in {where}: no such parameter input "
                      f"(parameters: {', '.join(wf.parameters) or 'none'})")
    elif isinstance(value, str) and value.startswith("$"):
        raise bad(f"bad binding {value} in {where}: a property may only be bound to $inputs.NAME")
    return value


def _step(wf: Workflow, item: dict[str, Any]) -> Step:
    name, kind = item["name"], item.get("type")
    block = BLOCKS.get(kind) if isinstance(kind, str) else None
    if block is None or not isinstance(kind, str):
        raise bad(f"unknown block {kind!r} in step {name}: vidpipe runs the Roboflow model blocks (instance "
                  "segmentation, object detection, keypoint detection, classification; v1, v2) and "
                  "roboflow_core/byte_tracker@v1..v3")
    values: dict[str, Any] = {}
    selectors: dict[str, str] = {}
    for prop, value in item.items():
        if prop in ("type", "name") or prop in IGNORED:
            continue
        if prop in block.inputs:
            selectors[prop] = _selector(wf, name, prop, value, block)
        elif prop in block.properties:
            values[prop] = _property(wf, f"{name}.{prop}", value)
        else:
            raise bad(f"step {name}: {kind} has no property {prop!r}")
    missing = [p for p in block.inputs if p not in selectors] + (
        ["model_id"] if block.kind == "model" and "model_id" not in values else [])
    if missing:
        raise bad(f"step {name}: {kind} needs {', '.join(missing)}")
    return Step(name, kind, block, values, selectors)


def _output(wf: Workflow, item: dict[str, Any]) -> tuple[str, str]:
    name, selector = item["name"], item.get("selector")
    if item.get("type", "JsonField") != "JsonField":
        raise bad(f"output {name}: unknown type {item.get('type')!r} (JsonField)")
    parts = selector.split(".") if isinstance(selector, str) else []
    if len(parts) == 2 and parts[0] == "$inputs" and parts[1] in wf.parameters:
        return name, selector  # type: ignore[return-value]
    step = wf.steps.get(parts[1]) if len(parts) == 3 and parts[0] == "$steps" else None
    if step is not None and (parts[2] == "*" or parts[2] in step.block.outputs):
        return name, selector  # type: ignore[return-value]
    if step is not None:
        raise bad(f"bad binding {selector} in output {name}: step {step.name} has no output {parts[2]!r} "
                  f"(outputs: {', '.join(step.block.outputs)})")
    raise bad(f"bad binding {selector!r} in output {name}: no such step or parameter input")


def compile_workflow(spec: Any) -> Workflow:
    """A Workflow spec (Roboflow's JSON: ``version``, ``inputs``, ``steps``, ``outputs``), checked."""
    if not isinstance(spec, dict):
        raise bad("the specification must be a JSON object")
    wf = Workflow()
    _inputs(wf, spec.get("inputs", []))
    for item in _named(spec.get("steps", []), "steps"):
        wf.steps[item["name"]] = _step(wf, item)  # in order: a selector may name an earlier step
    if not wf.steps:
        raise bad("no steps")
    wf.outputs = [_output(wf, item) for item in _named(spec.get("outputs", []), "outputs")]
    return wf
