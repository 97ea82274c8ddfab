"""ASGI middleware of the server: the request body limit, and per-request metrics.

The body limit is enforced twice: a ``Content-Length`` over it is answered 413 before a
byte of the body is read, and a body without one (chunked) is counted as it arrives and
cut off at the limit, so no request can make the server hold more than the limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from pipeline.app.serve.errors import ServeError, too_large
from pipeline.app.serve.metrics import ServeMetrics

Scope = dict[str, Any]
#: Paths reported under their own name in the metrics; anything else is "other" (bounded labels).
ROUTES = frozenset({"/infer/instance_segmentation", "/infer/object_detection", "/infer/keypoints_detection",
                    "/infer/classification", "/info", "/model/registry", "/model/add", "/model/remove", "/model/clear",
                    "/metrics", "/healthz", "/readyz"})


async def send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse bodies over ``max_bytes`` (413, ``{"message": ...}``), and bodies that stall:
    each part must arrive within ``read_timeout_s`` (408; a slow client cannot hold a request open)."""

    def __init__(self, app: Any, max_bytes: int, read_timeout_s: float = 30.0) -> None:
        self.app, self.max_bytes, self.read_timeout_s = app, max_bytes, read_timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, too_large(self._message(int(declared))).payload())
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except asyncio.TimeoutError:
                raise ServeError(408, f"request body not received within {self.read_timeout_s} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self._message(received))
            return message

        await self.app(scope, limited, send)

    def _message(self, size: int) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes"


class RequestMetrics:
    """Counts every response by route and status, and times it."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def recorded(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            path = scope.get("path", "")
            self.metrics.request(path if path in ROUTES else "other", status, time.perf_counter() - t0)


__all__ = ["BodyLimit", "RequestMetrics", "ServeError", "send_json"]
