"""Roboflow Inference's ``/inference_pipelines/*`` routes, with the payloads ``inference-sdk``
1.8 sends (``start_inference_pipeline_with_workflow``, ``list_inference_pipelines``,
``get_inference_pipeline_status``, pause, resume, terminate,
``consume_inference_pipeline_result``), run by the server's pipeline manager
(:mod:`pipeline.app.serve.pipelines`).

``initialise`` compiles the Workflow spec (:mod:`.workflow_video`) into a vidpipe pipeline
(a stream per video reference: ids ``"0"``, ``"1"``, ...; ``max_fps``; the memory sink's
``results_buffer_size`` as the pipeline's buffer). ``consume`` hands over the oldest frame
not yet consumed (Roboflow's: one at a time, an empty answer when none is ready; vidpipe waits
up to ``CONSUME_WAIT_S`` for one rather than have the client spin). With ``--state FILE`` the
workflows of the pipelines started here are kept in ``FILE.workflows.json`` (the manager keeps
the pipelines), so that ``consume`` answers for them after a restart. Answers are Roboflow's:
``{"status": "success", "context": {"request_id", "pipeline_id"}, ...}``; errors ``{"message"}``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.app.serve.config import ServeConfig
from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.pipelines.state import StateFile
from pipeline.app.serve.requests import _Request, parse_body
from pipeline.app.serve.responses import ROUTE_TASKS
from pipeline.app.serve.workflow_spec import compile_workflow
from pipeline.app.serve.workflow_video import VideoWorkflow, frame_metadata
from pipeline.core.errors import VidpipeError

log = logging.getLogger("vidpipe.serve")

CONSUME_WAIT_S = 1.0
END_SCHEMA = "vidpipe.end/1"


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore")


class VideoConfiguration(_Section):
    video_reference: int | str | list[int | str]
    max_fps: float | None = Field(None, gt=0)


class WorkflowConfiguration(_Section):
    workflow_specification: dict[str, Any] | None = None
    workspace_name: str | None = None
    workflow_id: str | None = None
    image_input_name: str = "image"
    workflows_parameters: dict[str, Any] | None = None


class SinkConfiguration(_Section):
    results_buffer_size: int = Field(64, ge=1, le=100_000)


class InitialiseRequest(_Request):
    video_configuration: VideoConfiguration
    processing_configuration: WorkflowConfiguration
    sink_configuration: SinkConfiguration = Field(default_factory=SinkConfiguration)


class ConsumeRequest(_Request):
    excluded_fields: list[str] = Field(default_factory=list)


@dataclass
class Consumer:
    """What ``consume`` keeps per pipeline: the workflow (and what it was built from: the spec,
    parameters and image input's name) and the last record handed over."""

    workflow: VideoWorkflow
    source: dict[str, Any]
    after: int = 0


def _workflow(source: dict[str, Any]) -> VideoWorkflow:
    return VideoWorkflow(compile_workflow(source["specification"]), source["parameters"], source["image_input_name"])


class WorkflowPipelines:
    """The pipelines started from Workflow specs: their consumers, by pipeline id."""

    def __init__(self, manager: Any, config: ServeConfig) -> None:
        self.manager = manager
        # The server's own model settings (its `backend` section, `postprocess_device`): a
        # Workflow spec has no place for them, and the operator set them for every model served.
        self.backend = config.backend.model_dump(mode="json", exclude_defaults=True)
        self.postprocess_device = config.postprocess_device
        self.consumers: dict[str, Consumer] = {}
        self.lock = threading.Lock()  # one consume at a time per server: a frame is handed over once
        state = config.state
        self.file = StateFile(state.with_name(f"{state.name}.workflows.json")) if state is not None else None
        self._restore()

    def _restore(self) -> None:
        """The workflows of the pipelines the manager restored (from the state file)."""
        if self.file is None:
            return
        try:
            entries = self.file.read()
        except VidpipeError as exc:
            log.error("%s", exc)
            return
        for entry in entries:
            if entry["id"] in self.manager.pipelines:
                try:
                    self.consumers[entry["id"]] = Consumer(_workflow(entry["spec"]), entry["spec"])
                except (ServeError, KeyError) as exc:
                    log.error("%s: pipeline %s: its workflow is not usable: %s", self.file.path, entry["id"], exc)
        self._save()

    def _save(self) -> None:
        if self.file is not None:
            self.file.write([{"id": pid, "spec": c.source} for pid, c in self.consumers.items()])

    def start(self, req: InitialiseRequest) -> str:
        proc = req.processing_configuration
        if proc.workflow_specification is None:
            raise ServeError(422, "a workflow_specification is needed: vidpipe does not fetch workflows from "
                                  "Roboflow's platform (workspace_name/workflow_id)")
        source = {"specification": proc.workflow_specification, "parameters": proc.workflows_parameters or {},
                  "image_input_name": proc.image_input_name}
        wf = _workflow(source)
        refs = req.video_configuration.video_reference
        spec = wf.spec(refs if isinstance(refs, list) else [refs], req.video_configuration.max_fps)
        spec["model"] = {**self.backend, **spec["model"]}
        spec["model"]["postprocess"]["device"] = self.postprocess_device
        pid: str = self.manager.create(spec, buffer_size=req.sink_configuration.results_buffer_size,
                                       mask_format="rle" if wf.route == "instance_segmentation" else "none")
        task = self.manager.get(pid).pipeline.model.task
        if task not in ROUTE_TASKS[wf.route]:
            self.manager.terminate(pid)
            raise ServeError(422, f"workflow: step {wf.model.name}: model {wf.model_id} is a {task} model; "
                                  f"{wf.model.type} runs {' or '.join(ROUTE_TASKS[wf.route])} models")
        with self.lock:
            self.consumers[pid] = Consumer(wf, source)
            self._save()
        return pid

    def consume(self, pid: str, excluded: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        managed = self.manager.get(pid)
        consumer = self.consumers.get(pid)
        if consumer is None:
            raise ServeError(409, f"pipeline {pid} was not started from a workflow: read GET /pipelines/{pid}/results")
        managed.buffer.wait(consumer.after, CONSUME_WAIT_S)
        with self.lock:
            while True:
                records, nxt, _ = managed.buffer.read(consumer.after, 1)
                if not records:
                    return [], []
                consumer.after = nxt
                rec = records[0]
                if rec.get("schema") != END_SCHEMA:  # a stream's end is in the status, not a frame
                    return [consumer.workflow.outputs(rec, excluded)], [frame_metadata(rec)]

    def forget(self, pid: str) -> None:
        with self.lock:
            self.consumers.pop(pid, None)
            self._save()


def _pipelines(request: Request) -> WorkflowPipelines:
    """The app's :class:`WorkflowPipelines`, over the server's pipeline manager."""
    state = request.app.state
    found = getattr(state, "workflow_pipelines", None)
    if found is None:  # the event loop's thread only: no lock needed
        server = state.server
        found = state.workflow_pipelines = WorkflowPipelines(server.pipelines, server.config)
    return found


def _answer(pid: str | None, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": "success", "context": {"request_id": str(uuid.uuid4()), "pipeline_id": pid}, **extra})


async def _body(request: Request) -> dict[str, Any]:
    server = request.app.state.server
    body: dict[str, Any] = await server.body(request)
    server.authorise(request, body)
    return body


async def initialise(request: Request) -> Response:
    req: InitialiseRequest = parse_body(InitialiseRequest, await _body(request))
    pid = await run_in_threadpool(_pipelines(request).start, req)
    return _answer(pid)


async def list_pipelines(request: Request) -> Response:
    await _body(request)
    listed = await run_in_threadpool(_pipelines(request).manager.list_pipelines)
    return _answer(None, pipelines=[p["id"] for p in listed])


async def status(request: Request) -> Response:
    await _body(request)
    pid = request.path_params["pipeline_id"]
    report = await run_in_threadpool(_pipelines(request).manager.status, pid)
    fps = sum(s.get("fps", 0.0) for s in report["streams"].values() if isinstance(s, dict))
    return _answer(pid, report={**report, "inference_throughput": round(fps, 2),
                                "sources_metadata": [{"source_id": k, "state": v.get("state")}
                                                     for k, v in report["streams"].items()]})


async def change(request: Request) -> Response:
    """``pause``, ``resume`` or ``terminate``."""
    await _body(request)
    pid, action = request.path_params["pipeline_id"], request.path_params["action"]
    pipelines = _pipelines(request)
    if action not in ("pause", "resume", "terminate"):
        raise ServeError(404, f"no route /inference_pipelines/{pid}/{action}: pause, resume, terminate")
    await run_in_threadpool(getattr(pipelines.manager, action), pid)
    if action == "terminate":
        pipelines.forget(pid)
    return _answer(pid)


async def consume(request: Request) -> Response:
    req: ConsumeRequest = parse_body(ConsumeRequest, await _body(request))
    pid = request.path_params["pipeline_id"]
    outputs, metadata = await run_in_threadpool(_pipelines(request).consume, pid, set(req.excluded_fields))
    return _answer(pid, outputs=outputs, frames_metadata=metadata)


def inference_pipeline_routes() -> list[Route]:
    return [Route("/inference_pipelines/initialise", initialise, methods=["POST"]),
            Route("/inference_pipelines/list", list_pipelines, methods=["GET"]),
            Route("/inference_pipelines/{pipeline_id}/status", status, methods=["GET"]),
            Route("/inference_pipelines/{pipeline_id}/consume", consume, methods=["GET"]),
            Route("/inference_pipelines/{pipeline_id}/{action}", change, methods=["POST"])]
