"""The API key, where Roboflow clients put it: the ``api_key`` query parameter, the JSON
body's ``api_key``, or an ``Authorization: Bearer`` header. Missing: 401; wrong: 403.
``/info``, ``/healthz`` and ``/readyz`` are open (Roboflow's SDK sends no key to ``/info``).

Example:
    >>> check_key("s3cret", None, None, "Bearer s3cret")
    >>> check_key("s3cret", None, None, None)
    Traceback (most recent call last):
    ...
    pipeline.app.serve.errors.ServeError: an API key is required: api_key in the query or body, or Authorization: Bearer
"""

from __future__ import annotations

import hmac

from pipeline.app.serve.errors import ServeError


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def check_key(expected: str | None, query_key: str | None, body_key: str | None, authorization: str | None) -> None:
    """Nothing when no key is configured or the one given matches (compared in constant time)."""
    if expected is None:
        return
    given = bearer(authorization) or query_key or body_key
    if not given:
        raise ServeError(401, "an API key is required: api_key in the query or body, or Authorization: Bearer")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ServeError(403, "the API key is not valid")
