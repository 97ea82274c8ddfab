"""The HTTP routes of the server's pipelines (JSON; errors as ``{"message"}``).

``POST /pipelines`` (a spec: JSON, or YAML with a YAML content type; or
``{"spec", "id", "buffer_size", "mask_format"}``) -> 201 and its status; ``GET /pipelines``;
``GET /pipelines/{id}``; ``DELETE /pipelines/{id}`` (terminate: its summary);
``POST /pipelines/{id}/pause|resume``; ``POST /pipelines/{id}/streams`` (a ``streams:``
entry) -> 201; ``DELETE /pipelines/{id}/streams/{sid}`` (``?drain=false`` aborts);
``POST /pipelines/{id}/streams/{sid}/pause|resume``; ``GET /pipelines/{id}/results?after=SEQ``
(``&limit=N``, ``&wait=S``: wait up to S seconds for one) -> ``{"records", "next", "dropped"}``;
``GET /pipelines/{id}/events?after=SEQ`` (or ``Last-Event-ID``): Server-Sent Events, one
per record (``event: result`` or ``end``; ``id``: its seq), ``event: dropped`` when the
reader fell behind, ``event: closed`` when the pipeline ends or the server stops.
Blocking calls run in the thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.pipelines.buffer import END_SCHEMA

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.serve.app import Server
    from pipeline.app.serve.pipelines.manager import PipelineManager

MAX_WAIT_S = 30.0  # the longest a results poll may wait for a record


def _server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


async def _body(request: Request) -> Any:
    """The JSON body (or YAML, by content type); authorised with its ``api_key``."""
    server = _server(request)
    raw = await request.body()
    if "yaml" in request.headers.get("content-type", ""):
        try:
            data = yaml.safe_load(raw) if raw else {}
        except yaml.YAMLError as exc:
            raise ServeError(400, f"request body is not valid YAML: {exc}".splitlines()[0]) from None
    else:
        try:
            data = json.loads(raw) if raw else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServeError(400, "request body is not valid JSON") from None
    server.authorise(request, data if isinstance(data, dict) else None)
    return data


def _manager(request: Request, body: bool = False) -> PipelineManager:
    server = _server(request)
    if not body:
        server.authorise(request)
    return server.pipelines


def _int_param(request: Request, name: str, default: int | None, low: int = 0) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if number < low:
        raise ServeError(400, f"query parameter {name}={value!r}: an integer >= {low}")
    return number


async def create(request: Request) -> Response:
    body = await _body(request)
    manager = _manager(request, body=True)
    options: dict[str, Any] = {}
    if isinstance(body, dict) and "spec" in body:  # the wrapped form: options beside the spec
        options = {k: body[k] for k in ("id", "buffer_size", "mask_format") if k in body}
        body = body["spec"]
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "api_key"}
    pid = await run_in_threadpool(manager.create, body, options.get("id"), buffer_size=options.get("buffer_size"),
                                  mask_format=options.get("mask_format", "rle"))
    return JSONResponse(manager.status(pid), status_code=201)


async def listing(request: Request) -> Response:
    return JSONResponse({"pipelines": _manager(request).list_pipelines()})


async def status(request: Request) -> Response:
    return JSONResponse(_manager(request).status(request.path_params["pid"]))


async def terminate(request: Request) -> Response:
    pid = request.path_params["pid"]
    summary = await run_in_threadpool(_manager(request).terminate, pid)
    return JSONResponse({"id": pid, "state": "terminated", "summary": summary})


def _pause_route(paused: bool) -> Callable[[Request], Awaitable[Response]]:
    """``POST .../pause`` or ``.../resume``, of the pipeline or (with ``sid``) of one stream."""

    async def change(request: Request) -> Response:
        manager, pid = _manager(request), request.path_params["pid"]
        await run_in_threadpool(manager.pause if paused else manager.resume, pid, request.path_params.get("sid"))
        return JSONResponse(manager.status(pid))

    return change


async def add_stream(request: Request) -> Response:
    body = await _body(request)
    manager, pid = _manager(request, body=True), request.path_params["pid"]
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "api_key"}
    sid = await run_in_threadpool(manager.add_stream, pid, body)
    return JSONResponse({"id": sid, "pipeline": pid, "status": manager.status(pid)["streams"].get(sid)}, status_code=201)


async def remove_stream(request: Request) -> Response:
    manager, pid, sid = _manager(request), request.path_params["pid"], request.path_params["sid"]
    drain = request.query_params.get("drain", "true").lower() not in ("false", "0", "no")
    final = await run_in_threadpool(manager.remove_stream, pid, sid, drain)
    return JSONResponse({"id": sid, "pipeline": pid, "summary": final})


async def results(request: Request) -> Response:
    manager, pid = _manager(request), request.path_params["pid"]
    after = _int_param(request, "after", 0) or 0
    limit = _int_param(request, "limit", None, low=1)
    wait = min(float(_int_param(request, "wait", 0) or 0), MAX_WAIT_S)
    managed = manager.get(pid)
    if wait > 0:
        try:
            await asyncio.wait_for(managed.buffer.wait_async(after), wait)
        except asyncio.TimeoutError:
            pass  # nothing new: an empty answer
    records, nxt, dropped = managed.buffer.read(after, limit)
    return JSONResponse({"records": records, "next": nxt, "dropped": dropped, "state": managed.state})


def _sse(event: str, data: Any, seq: int | None = None) -> bytes:
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def events(request: Request) -> Response:
    manager, pid = _manager(request), request.path_params["pid"]
    last = request.headers.get("last-event-id")
    after = int(last) if last and last.isdigit() else _int_param(request, "after", 0) or 0
    buffer = manager.get(pid).buffer

    async def stream() -> AsyncIterator[bytes]:
        seen = after
        while True:
            records, nxt, dropped = buffer.read(seen)
            if dropped:
                yield _sse("dropped", {"dropped": dropped, "after": seen})
            for rec in records:
                yield _sse("end" if rec.get("schema") == END_SCHEMA else "result", rec, rec["seq"])
            seen = nxt
            if buffer.closed and buffer.seq <= seen:
                yield _sse("closed", {"pipeline": pid, "next": seen})
                return
            await buffer.wait_async(seen)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def pipeline_routes() -> list[Route]:
    """The routes, for the app's table."""
    return [
        Route("/pipelines", create, methods=["POST"]), Route("/pipelines", listing, methods=["GET"]),
        Route("/pipelines/{pid}", status, methods=["GET"]), Route("/pipelines/{pid}", terminate, methods=["DELETE"]),
        Route("/pipelines/{pid}/pause", _pause_route(True), methods=["POST"]),
        Route("/pipelines/{pid}/resume", _pause_route(False), methods=["POST"]),
        Route("/pipelines/{pid}/results", results, methods=["GET"]),
        Route("/pipelines/{pid}/events", events, methods=["GET"]),
        Route("/pipelines/{pid}/streams", add_stream, methods=["POST"]),
        Route("/pipelines/{pid}/streams/{sid}", remove_stream, methods=["DELETE"]),
        Route("/pipelines/{pid}/streams/{sid}/pause", _pause_route(True), methods=["POST"]),
        Route("/pipelines/{pid}/streams/{sid}/resume", _pause_route(False), methods=["POST"]),
    ]
