"""HTTP on httpx, sync and async: one request or many (at most ``max_concurrent`` in
flight), each answer's JSON body returned and each failure raised as the client's error
(an error status as :class:`HTTPCallErrorError` with the server's status and message).

Example:
    >>> t = Transport("http://127.0.0.1:9")  # nothing listens on port 9
    >>> t.send(Call("GET", "/info"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.client.errors.HTTPServerConnectionError: cannot reach http://127.0.0.1:9 (GET /info): ...
    >>> t.close()
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeline.client.errors import HTTPCallErrorError, HTTPClientError, HTTPServerConnectionError, redact_key
from pipeline.client.jsonbody import json_bytes

log = logging.getLogger("vidpipe.client")

#: Statuses of a busy server (too many requests, overloaded, gateway timeout): worth another try.
RETRYABLE_STATUSES = frozenset({429, 503, 504})


@dataclass(frozen=True)
class Call:
    """One request: method, path under the API URL, JSON body, query and headers."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes | None:
        """The body as JSON bytes (base64 images spliced in: :mod:`pipeline.client.jsonbody`)."""
        return None if self.body is None else json_bytes(self.body)

    def all_headers(self) -> dict[str, str]:
        return self.headers if self.body is None else {"Content-Type": "application/json", **self.headers}

    @property
    def what(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Retry:
    """How inference requests are tried again (as ``inference-sdk`` does): up to
    ``retries`` more times, ``interval_s`` apart, when the server is busy
    (:data:`RETRYABLE_STATUSES`) or could not be reached."""

    retries: int = 0
    interval_s: float = 1.0

    def worth_it(self, attempt: int, exc: HTTPClientError) -> bool:
        """Whether attempt ``attempt`` (0: the first) failing with ``exc`` is tried again."""
        busy = isinstance(exc, HTTPCallErrorError) and exc.status_code in RETRYABLE_STATUSES
        if attempt >= self.retries or not (busy or isinstance(exc, HTTPServerConnectionError)):
            return False
        log.debug("%s: trying again in %g s (%d of %d)", exc, self.interval_s, attempt + 1, self.retries)
        return True


def _server_message(response: httpx.Response) -> str:
    """The server's own words: JSON ``message`` or ``detail`` (+ ``inner_error_message``),
    else the body text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if not isinstance(data, dict):
        return str(data)[:500]
    message = data.get("message") or data.get("detail") or json.dumps(data)[:500]
    if isinstance(message, list):  # FastAPI's validation errors: one line per field
        message = "; ".join(f"{'.'.join(str(p) for p in m.get('loc', ()))}: {m.get('msg')}" if isinstance(m, dict) else str(m)
                            for m in message)
    if data.get("inner_error_message"):
        message = f"{message}. More details: {data['inner_error_message']}"
    return redact_key(str(message))


def _answer(call: Call, response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise HTTPCallErrorError(call.what, response.status_code, _server_message(response))
    try:
        return response.json()
    except ValueError:
        raise HTTPClientError(f"{call.what}: the server answered {response.status_code} with a body that is not JSON") from None


def _failure(base_url: str, call: Call, exc: httpx.HTTPError, timeout_s: float) -> HTTPClientError:
    if isinstance(exc, httpx.TimeoutException):
        return HTTPClientError(f"{call.what}: no answer from {base_url} within {timeout_s:g} s")
    return HTTPServerConnectionError(f"cannot reach {base_url} ({call.what}): {redact_key(str(exc)) or type(exc).__name__}")


class Transport:
    """Requests to one server (``api_url``): a pooled sync client shared by threads, and
    a fresh async client per async call (an httpx async pool is bound to its event loop)."""

    def __init__(self, api_url: str, timeout_s: float = 60.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self._client = httpx.Client(base_url=self.api_url, timeout=timeout_s)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def send(self, call: Call, timeout_s: float | None = None) -> Any:
        """The JSON answer of one request."""
        timeout = timeout_s or self.timeout_s
        try:
            response = self._client.request(call.method, call.path, content=call.content(), params=call.params,
                                            headers=call.all_headers(), timeout=timeout)
        except httpx.HTTPError as exc:
            raise _failure(self.api_url, call, exc, timeout) from None
        return _answer(call, response)

    def send_retrying(self, call: Call, timeout_s: float | None = None, retry: Retry = Retry()) -> Any:
        """:meth:`send`, tried again as ``retry`` says."""
        attempt = 0
        while True:
            try:
                return self.send(call, timeout_s)
            except HTTPClientError as exc:
                if not retry.worth_it(attempt, exc):
                    raise
            attempt += 1
            time.sleep(retry.interval_s)

    def send_many(self, calls: Sequence[Call], max_concurrent: int, timeout_s: float | None = None,
                  retry: Retry = Retry()) -> list[Any]:
        """The answers of ``calls`` in order, at most ``max_concurrent`` in flight; the
        first failure (in order) is raised once all have finished."""
        if len(calls) <= 1 or max_concurrent == 1:
            return [self.send_retrying(c, timeout_s, retry) for c in calls]
        with ThreadPoolExecutor(max_workers=min(max_concurrent, len(calls)), thread_name_prefix="vidpipe-client") as pool:
            futures = [pool.submit(self.send_retrying, c, timeout_s, retry) for c in calls]
            return [f.result() for f in futures]

    def fetch(self, url: str) -> bytes:
        """The bytes at ``url`` (an image given as a URL), redirects followed."""
        try:
            response = self._client.get(url, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise HTTPServerConnectionError(f"cannot fetch image {url!r}: {exc}") from None
        if response.status_code >= 400:
            raise HTTPCallErrorError(f"GET {url}", response.status_code, response.reason_phrase)
        return response.content

    async def send_async(self, call: Call, timeout_s: float | None = None) -> Any:
        """The JSON answer of one request, asynchronously."""
        return (await self.send_many_async([call], 1, timeout_s))[0]

    async def send_many_async(self, calls: Sequence[Call], max_concurrent: int, timeout_s: float | None = None,
                              retry: Retry = Retry()) -> list[Any]:
        """The answers of ``calls`` in order, at most ``max_concurrent`` in flight (a
        request waiting to be tried again holds no slot)."""
        timeout = timeout_s or self.timeout_s
        gate = asyncio.Semaphore(max_concurrent)
        async with httpx.AsyncClient(base_url=self.api_url, timeout=timeout) as client:

            async def once(call: Call) -> Any:
                async with gate:
                    try:
                        response = await client.request(call.method, call.path, content=call.content(), params=call.params,
                                                        headers=call.all_headers())
                    except httpx.HTTPError as exc:
                        raise _failure(self.api_url, call, exc, timeout) from None
                    return _answer(call, response)

            async def one(call: Call) -> Any:
                attempt = 0
                while True:
                    try:
                        return await once(call)
                    except HTTPClientError as exc:
                        if not retry.worth_it(attempt, exc):
                            raise
                    attempt += 1
                    await asyncio.sleep(retry.interval_s)

            return list(await asyncio.gather(*(one(c) for c in calls)))

    async def fetch_async(self, url: str) -> bytes:
        """:meth:`fetch` without blocking the event loop."""
        return await asyncio.to_thread(self.fetch, url)
