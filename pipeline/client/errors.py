"""The client's errors. Each is a :class:`~pipeline.core.errors.VidpipeError` (one line,
user-facing); an HTTP error carries the server's status and message.

Example:
    >>> err = HTTPCallErrorError("POST /infer/object_detection", 404, "model 'x' not found")
    >>> err.status_code, err.api_message
    (404, "model 'x' not found")
    >>> str(err)
    "POST /infer/object_detection: HTTP 404: model 'x' not found"
"""

from __future__ import annotations

import re

from pipeline.core.errors import VidpipeError

_API_KEY = re.compile(r"(api_key=)[^&\s]*")


def redact_key(text: str) -> str:
    """``text`` with any ``api_key=...`` query value masked (error texts quote URLs).

    >>> redact_key("GET http://h/model/registry?api_key=secret123&x=1")
    'GET http://h/model/registry?api_key=***&x=1'
    """
    return _API_KEY.sub(r"\1***", text)


class HTTPClientError(VidpipeError):
    """Anything the client could not do: the base of the errors below."""


class HTTPCallErrorError(HTTPClientError):
    """The server answered with an error status: ``status_code`` and the server's own
    message (``api_message``: its JSON ``message`` or ``detail``, else the body text)."""

    def __init__(self, description: str, status_code: int, api_message: str | None) -> None:
        self.description = redact_key(description)
        self.status_code = status_code
        self.api_message = api_message
        super().__init__(f"{self.description}: HTTP {status_code}: {api_message or 'no message'}")


class HTTPServerConnectionError(HTTPClientError):
    """No answer: the server could not be reached, or the connection broke."""


class InvalidInputFormatError(HTTPClientError):
    """An image reference the client cannot read (unknown type, missing file, bad bytes)."""


class ModelNotSelectedError(HTTPClientError):
    """``infer`` without a ``model_id`` and no model selected."""


class ModelNotInitializedError(HTTPClientError):
    """The server neither has the model nor could load it."""


class ModelTaskTypeNotSupportedError(HTTPClientError):
    """The model's task has no image route in the v1 protocol."""


class InvalidParameterError(HTTPClientError, ValueError):
    """A configuration value out of range or of an unknown kind."""
