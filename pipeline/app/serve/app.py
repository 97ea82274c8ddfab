"""The ASGI app of ``vidpipe serve``: Roboflow Inference's v1 routes over vidpipe's models.

Routes: ``POST /infer/{instance_segmentation|object_detection|keypoints_detection|classification}``,
``GET /info``, ``GET /model/registry``, ``POST /model/add|remove|clear``, ``GET /metrics``,
``GET /healthz``, ``GET /readyz``; and ``/pipelines/...``, pipelines run by the server
(:mod:`pipeline.app.serve.pipelines`). Blocking work never runs on the event loop: images are
decoded and models loaded in the thread pool, inference in each model's worker thread
(:mod:`pipeline.app.serve.batcher`), started with the model and joined when it is unloaded
or the app shuts down.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.app.serve.auth import check_key
from pipeline.app.serve.batcher import detections_of
from pipeline.app.serve.config import ServeConfig
from pipeline.app.serve.errors import ServeError, overloaded
from pipeline.app.serve.images import load_image
from pipeline.app.serve.inference_pipelines import inference_pipeline_routes
from pipeline.app.serve.metrics import ServeMetrics
from pipeline.app.serve.middleware import BodyLimit, RequestMetrics
from pipeline.app.serve.pipelines.manager import PipelineManager
from pipeline.app.serve.pipelines.routes import pipeline_routes
from pipeline.app.serve.registry import ModelRegistry
from pipeline.app.serve.requests import InferRequest, ModelRequest, parse_body
from pipeline.app.serve.responses import ROUTE_TASKS, prediction
from pipeline.app.serve.urls import UrlFetcher
from pipeline.app.serve.visualize import visualization
from pipeline.app.serve.workflow_run import workflow_routes
from sinks import blend

log = logging.getLogger("vidpipe.serve")
SERVER_NAME = "vidpipe inference server"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vidpipe")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0.0.0+source"


class Server:
    """What the routes share: the config, the models, the metrics, readiness."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = ServeMetrics()
        # Requests read or decoded but not yet queued: the batchers wait for these, not for nobody.
        self.preparing = 0
        self.registry = ModelRegistry(config, on_batch=self.metrics.batch, coming=lambda: self.preparing > 0)
        self.metrics.watch_queues(lambda: {k: w.queue.qsize() for k, w in list(self.registry.workers.items())})
        max_bytes = int(config.limits.max_body_mb * 1024 * 1024)
        self.fetch_url = UrlFetcher(config.urls, max_bytes) if config.urls.enabled else None
        self.uuid = str(uuid.uuid4())
        self.ready = False
        self.in_progress = 0
        # Pipelines run by the server (pipeline.app.serve.pipelines); their model ids resolve as the routes' do.
        self.pipelines = PipelineManager(self.registry.resolve, config.state, config.pipeline_buffer, config.cluster)
        self.metrics.watch_pipelines(self.pipelines.statuses)

    @contextmanager
    def inference_slot(self) -> Iterator[None]:
        """One inference request in progress (``/infer``, workflows): 503 at once beyond
        ``limits.max_requests``, which bounds the memory of requests read and decoded but not
        yet queued. The event loop's thread only: no lock needed."""
        limit = self.config.limits.max_requests
        if self.in_progress >= limit:
            raise overloaded(f"server is overloaded: {limit} inference requests in progress; retry later")
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1

    async def body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServeError(400, "request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ServeError(422, "the request body must be a JSON object")
        return data

    def authorise(self, request: Request, body: dict[str, Any] | None = None) -> None:
        key = (body or {}).get("api_key")
        check_key(self.config.api_key, request.query_params.get("api_key"), key if isinstance(key, str) else None,
                  request.headers.get("authorization"))

    def load_images(self, req: InferRequest) -> list[Any]:
        return [load_image(ref, self.config.limits.max_pixels, self.fetch_url) for ref in req.images()]


async def infer(request: Request) -> Response:
    server: Server = request.app.state.server
    route = request.path_params["task"]
    if route not in ROUTE_TASKS:
        raise ServeError(404, f"no route /infer/{route}: one of {', '.join('/infer/' + r for r in ROUTE_TASKS)}")
    with server.inference_slot():
        preparing = Preparing(server)
        try:
            return await _infer(server, request, route, preparing)
        finally:
            preparing.done()


class Preparing:
    """Counts a request in ``Server.preparing`` from its arrival until its images are queued
    (or it fails), so that a model's batcher knows whether more images are on their way."""

    def __init__(self, server: Server) -> None:
        self.server, self.open = server, True
        server.preparing += 1

    def done(self) -> None:
        if self.open:
            self.open = False
            self.server.preparing -= 1


async def _infer(server: Server, request: Request, route: str, preparing: Preparing) -> Response:
    body = await server.body(request)
    server.authorise(request, body)
    req: InferRequest = parse_body(InferRequest, body)
    refs = req.images()
    if not refs:
        raise ServeError(422, "invalid field image: an empty list (send one image or more)")
    if len(refs) > server.config.limits.max_images:
        raise ServeError(413, f"{len(refs)} images in one request, the limit is {server.config.limits.max_images}")
    t_decode = time.perf_counter()
    images = await run_in_threadpool(server.load_images, req)  # a bad image fails before any model loads
    decode_s = time.perf_counter() - t_decode
    worker = server.registry.workers.get(req.model_id)  # loaded: no trip through the thread pool
    if worker is None:
        worker = await run_in_threadpool(server.registry.get, req.model_id)
    t0 = time.perf_counter()  # Roboflow's `time`: the inference, not a first use's model load
    if worker.model.task not in ROUTE_TASKS[route]:
        raise ServeError(400, f"model {req.model_id} is a {worker.model.task} model: /infer/{route} serves "
                              f"{' or '.join(ROUTE_TASKS[route])} models")
    # Done preparing BEFORE the images are queued: the worker they wake must not wait for them as still coming.
    preparing.done()
    jobs = worker.submit(images, req.postprocess())
    dets = await detections_of(jobs, req.model_id, server.config.limits.request_timeout_s)
    seconds = time.perf_counter() - t0

    def answer() -> list[dict[str, Any]]:
        out = []
        for image, d in zip(images, dets):
            vis = visualization(image, d, req.labels, req.stroke, route == "instance_segmentation") \
                if req.visualize_predictions else None
            out.append(prediction(d, image.shape[1], image.shape[0], route, req.format, req.response_mask_format,
                                  seconds, vis, req.model_id))
        return out

    t_answer = time.perf_counter()
    answers = await run_in_threadpool(answer)
    # Where the request's time went (W3C Server-Timing, shown by browsers and `curl -v`): decoding
    # the images; inference from queueing to detections, of it the model's own time (its share of
    # the batch's preprocess + run, and post-processing); encoding the answer.
    timing = (f"decode;dur={decode_s * 1e3:.2f}, infer;dur={seconds * 1e3:.2f}, "
              f"model;dur={sum(j.model_s for j in jobs) * 1e3:.2f}, answer;dur={(time.perf_counter() - t_answer) * 1e3:.2f}")
    return JSONResponse(answers if req.batched else answers[0], headers={"Server-Timing": timing})


async def info(request: Request) -> Response:
    server: Server = request.app.state.server
    return JSONResponse({"name": SERVER_NAME, "version": _version(), "uuid": server.uuid})


async def registry(request: Request) -> Response:
    server: Server = request.app.state.server
    server.authorise(request)
    return JSONResponse(server.registry.describe())


async def _change_model(request: Request, change: str) -> Response:
    """``/model/add`` or ``/model/remove``: the registry's ``change`` method on the body's model id."""
    server: Server = request.app.state.server
    body = await server.body(request)
    server.authorise(request, body)
    req: ModelRequest = parse_body(ModelRequest, body)
    await run_in_threadpool(getattr(server.registry, change), req.model_id)
    return JSONResponse(server.registry.describe())


async def model_add(request: Request) -> Response:
    return await _change_model(request, "add")


async def model_remove(request: Request) -> Response:
    return await _change_model(request, "remove")


async def model_clear(request: Request) -> Response:
    server: Server = request.app.state.server
    body = await server.body(request)
    server.authorise(request, body)
    await run_in_threadpool(server.registry.clear)
    return JSONResponse(server.registry.describe())


async def metrics(request: Request) -> Response:
    server: Server = request.app.state.server
    server.authorise(request)
    return Response(server.metrics.render(), media_type="text/plain; version=0.0.4")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    server: Server = request.app.state.server
    if not server.ready:
        return JSONResponse({"message": "starting: models are loading"}, status_code=503)
    return JSONResponse({"status": "ready", "models": sorted(server.registry.workers)})


async def _serve_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServeError)
    return JSONResponse(exc.payload(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"message": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def create_app(config: ServeConfig | None = None, on_ready: Callable[[], None] | None = None,
               on_stop: Callable[[], None] | None = None) -> Any:
    """The ASGI app (body limit and metrics around a Starlette app); models in ``config.preload``
    load at startup, then ``on_ready`` is called; ``on_stop`` once the models are unloaded at shutdown."""
    server = Server(config or ServeConfig())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for model_id in server.config.preload:
            await run_in_threadpool(server.registry.add, model_id)
        await run_in_threadpool(server.pipelines.restore)  # --state: the pipelines it ran before
        await run_in_threadpool(blend.warm_up)  # visualize_predictions' mask kernel: compiled now, not on a request
        server.ready = True
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            server.ready = False
            await run_in_threadpool(server.pipelines.close)  # stops and joins every pipeline's thread
            await run_in_threadpool(server.registry.clear)  # joins every model's worker thread
            if on_stop is not None:
                on_stop()

    routes = [
        *workflow_routes(), *inference_pipeline_routes(),  # before /infer/{task}: it would take /infer/workflows
        Route("/infer/{task}", infer, methods=["POST"]), Route("/info", info, methods=["GET"]),
        Route("/model/registry", registry, methods=["GET"]), Route("/model/add", model_add, methods=["POST"]),
        Route("/model/remove", model_remove, methods=["POST"]), Route("/model/clear", model_clear, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]), Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *pipeline_routes(),  # /pipelines/...: pipelines run by the server
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        ServeError: _serve_error, HTTPException: _http_error, Exception: _internal_error})
    app.state.server = server
    max_bytes = int(server.config.limits.max_body_mb * 1024 * 1024)
    outer: Any = RequestMetrics(BodyLimit(app, max_bytes, server.config.limits.read_timeout_s), server.metrics)
    outer.server = server  # the command's hook at a signal: end the pipelines' event streams
    return outer
