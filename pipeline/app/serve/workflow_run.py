"""``POST /workflows/run`` (and the older ``/infer/workflows``): a Workflow spec run on images,
as Roboflow's ``run_workflow(specification=..., images=..., parameters=...)`` sends it.

Each model step runs its model with its bound properties as post-processing options, through
the same per-model batcher as ``/infer``; its ``predictions`` are what ``/infer/{route}``
answers for that image and those options (without the per-request ``inference_id``, ``time``,
``visualization`` and ``frame_id``). The answer is Roboflow's: ``{"outputs": [one object per
image, keyed by the spec's output names], "profiler_trace": []}``. A tracker step needs a
video: it runs in ``/inference_pipelines``, and here it is a 422.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.app.serve.batcher import detections_of
from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.images import load_image
from pipeline.app.serve.requests import ImageRef, _Request, parse_body
from pipeline.app.serve.responses import ROUTE_TASKS, prediction
from pipeline.app.serve.workflow_spec import Step, Workflow, bad, compile_workflow

#: The /infer answer's fields that belong to one request, not to a prediction.
PER_REQUEST = ("inference_id", "time", "visualization", "frame_id")


class WorkflowRequest(_Request):
    """The body ``run_workflow`` sends (``use_cache``, ``enable_profiling``, ... ignored)."""

    specification: dict[str, Any]
    inputs: dict[str, Any] = Field(default_factory=dict)
    excluded_fields: list[str] | None = None


def image_refs(wf: Workflow, inputs: dict[str, Any]) -> list[list[ImageRef]]:
    """Per image input of the spec, its images (one, or a list: a batch); batches line up."""
    refs: list[list[ImageRef]] = []
    for name in wf.images:
        if name not in inputs:
            raise bad(f"image input {name} is not given")
        value = inputs[name]
        batch = value if isinstance(value, list) else [value]
        try:
            refs.append([ImageRef.model_validate(v) for v in batch])
        except ValidationError as exc:
            raise bad(f"image input {name}: {exc.errors()[0]['msg']} (an image is {{type, value}})") from None
    if not refs:
        raise bad("the spec has no image input (WorkflowImage)")
    if len({len(b) for b in refs}) > 1:
        raise bad(f"image inputs {', '.join(wf.images)} hold batches of different sizes")
    return refs


async def run_step(server: Any, step: Step, props: dict[str, Any], images: list[Any],
                   wf: Workflow) -> list[dict[str, Any]]:
    """One model step on every image: its outputs per image."""
    model_id = props["model_id"]
    options = wf.postprocess(step.name, props)
    worker = server.registry.workers.get(model_id) or await run_in_threadpool(server.registry.get, model_id)
    route = step.block.route
    if worker.model.task not in ROUTE_TASKS[route]:
        raise ServeError(400, f"workflow: step {step.name}: model {model_id} is a {worker.model.task} model; "
                              f"{step.type} runs {' or '.join(ROUTE_TASKS[route])} models")
    t0 = time.perf_counter()
    jobs = worker.submit(images, options)
    dets = await detections_of(jobs, model_id, server.config.limits.request_timeout_s)
    seconds = time.perf_counter() - t0

    def outputs() -> list[dict[str, Any]]:
        out = []
        for image, d in zip(images, dets):
            answer = prediction(d, image.shape[1], image.shape[0], route, "roboflow", None, seconds, None, model_id)
            preds = {k: v for k, v in answer.items() if k not in PER_REQUEST}
            out.append({"inference_id": str(uuid.uuid4()), "predictions": preds, "model_id": model_id})
        return out

    return await run_in_threadpool(outputs)


def select(wf: Workflow, selector: str, results: dict[str, dict[str, Any]], params: dict[str, Any]) -> Any:
    """The value a compiled output selector names, for one image."""
    parts = selector.split(".")
    if parts[0] == "$inputs":
        return params.get(parts[1], wf.parameters.get(parts[1]))
    step = wf.steps[parts[1]]
    got = results[parts[1]]
    if parts[2] == "*":
        return {k: got[k] for k in step.block.outputs}
    return got[parts[2]]


async def run_workflow(request: Request) -> Response:
    """The route: counted with the ``/infer`` requests in progress (the same bound)."""
    server = request.app.state.server
    with server.inference_slot():
        return await _run_workflow(server, request)


async def _run_workflow(server: Any, request: Request) -> Response:
    body = await server.body(request)
    server.authorise(request, body)
    req: WorkflowRequest = parse_body(WorkflowRequest, body)
    wf = compile_workflow(req.specification)
    trackers = wf.of_kind("tracker")
    if trackers:
        raise bad(f"step {trackers[0].name}: {trackers[0].type} tracks objects across a video's frames; "
                  "run it in an inference pipeline (/inference_pipelines/initialise), not on images")
    bound = wf.bind(req.inputs)
    for step in wf.of_kind("model"):
        wf.postprocess(step.name, bound[step.name])  # a bad value fails before any image is decoded
    refs = image_refs(wf, req.inputs)
    count = sum(len(b) for b in refs)
    if count > server.config.limits.max_images:
        raise ServeError(413, f"{count} images in one request, the limit is {server.config.limits.max_images}")
    limit, fetch = server.config.limits.max_pixels, server.fetch_url

    def load(batch: list[ImageRef]) -> list[Any]:
        return [load_image(r, limit, fetch) for r in batch]

    decoded = {name: await run_in_threadpool(load, batch) for name, batch in zip(wf.images, refs)}
    per_step: dict[str, list[dict[str, Any]]] = {}
    for step in wf.of_kind("model"):
        source = step.selectors["images"][len("$inputs."):]
        per_step[step.name] = await run_step(server, step, bound[step.name], decoded[source], wf)
    excluded = set(req.excluded_fields or ())
    outputs = []
    for i in range(len(refs[0])):
        results = {name: got[i] for name, got in per_step.items()}
        outputs.append({name: select(wf, sel, results, req.inputs) for name, sel in wf.outputs if name not in excluded})
    return JSONResponse({"outputs": outputs, "profiler_trace": []})


def workflow_routes() -> list[Route]:
    """The routes, listed before ``/infer/{task}`` (which would take ``/infer/workflows``)."""
    return [Route("/workflows/run", run_workflow, methods=["POST"]),
            Route("/infer/workflows", run_workflow, methods=["POST"])]
