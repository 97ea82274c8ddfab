"""Every failure a client sees: a status and one clear line, answered as ``{"message": ...}``.

Example:
    >>> ServeError(404, "no model 'x'").payload()
    {'message': "no model 'x'"}
"""

from __future__ import annotations

from typing import Any


class ServeError(Exception):
    """An error answered to the client with ``status`` (400, 401, 403, 404, 413, 422, 503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def payload(self) -> dict[str, Any]:
        return {"message": self.message}


def bad_image(message: str) -> ServeError:
    return ServeError(400, message)


def too_large(message: str) -> ServeError:
    return ServeError(413, message)


def overloaded(message: str) -> ServeError:
    return ServeError(503, message)
