"""The checks a ``vidpipe.result/1`` field goes through when decoded, and the error they
raise: :class:`WireError`, whose message starts with the field's path.

Example:
    >>> _number(1, "detections.0.score"), _at("detections", 3)
    (1.0, 'detections.3')
    >>> _integer("x", "frame")
    Traceback (most recent call last):
    ...
    pipeline.wire.checks.WireError: frame: expected an integer, got 'x'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pipeline.core.errors import VidpipeError

_T = TypeVar("_T")


class WireError(VidpipeError):
    """A JSON object that is not a valid ``vidpipe.result/1`` record; the message (and
    ``path``) name the field, e.g. ``detections.3.score``."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path



def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(path: str, problem: str) -> WireError:
    return WireError(f"{path}: {problem}", path)


def _at(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(path, f"expected a number, got {_show(value)}")
    return float(value)


def _size(value: object, path: str) -> float:
    number = _number(value, path)
    if number < 0:
        raise _fail(path, f"expected a non-negative number, got {_show(value)}")
    return number


def _integer(value: object, path: str) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"expected an integer, got {_show(value)}")
    return value


def _positive(value: object, path: str) -> int:
    try:
        number = _integer(value, path)
    except WireError:
        number = 0
    if number <= 0:
        raise _fail(path, f"expected a positive integer, got {_show(value)}")
    return number


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"expected a string, got {_show(value)}")
    return value


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"expected true or false, got {_show(value)}")
    return value


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {_show(value)}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected a list, got {_show(value)}")
    return value


def _required(obj: Mapping[str, Any], key: str, path: str, check: Callable[[object, str], _T]) -> _T:
    where = _at(path, key)
    if key not in obj:
        raise _fail(where, "missing")
    return check(obj[key], where)


def _optional(obj: Mapping[str, Any], key: str, path: str, check: Callable[[object, str], _T], default: _T) -> _T:
    return check(obj[key], _at(path, key)) if key in obj else default


def _nullable(obj: Mapping[str, Any], key: str, path: str, check: Callable[[object, str], _T]) -> _T | None:
    value = obj.get(key)
    return None if value is None else check(value, _at(path, key))


def _mapping_of(check: Callable[[object, str], _T]) -> Callable[[object, str], dict[str, _T]]:
    def parse(value: object, path: str) -> dict[str, _T]:
        return {str(k): check(v, _at(path, k)) for k, v in _object(value, path).items()}

    return parse
