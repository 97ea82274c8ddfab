"""Callback sink: hands every result to a Python callable (in the sink's own thread).

Example:
    >>> seen = []
    >>> sink = CallbackSink(seen.append)
    >>> CallbackSink.from_config(CallbackSinkConfig(target="json:dumps", fail_fast=True)).name
    'callback:dumps'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from pipeline.core.errors import VidpipeError
from pipeline.core.items import EndOfStream
from pipeline.vision.result import Result
from sinks.base import Sink, check_config
from sinks.config import CallbackSinkConfig


def import_callable(target: str) -> Callable[[Result], object]:
    """``package.module:function`` → the function."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise VidpipeError(f"callback target must be 'module:function', got {target!r}")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 - the module's own import-time errors too, named in one line
        raise VidpipeError(f"cannot import callback {target!r}: {type(exc).__name__}: {exc}") from exc
    if not callable(fn):
        raise VidpipeError(f"callback {target!r} is not callable")
    return fn


class CallbackSink(Sink):
    """Calls ``fn(result)`` for every result, in the sink's thread, and ``on_end(eos)``
    (if given) when a stream ends: its last item, after its last result."""

    def __init__(self, fn: Callable[[Result], object], lossless: bool = True, name: str | None = None,
                 on_end: Callable[[EndOfStream], object] | None = None) -> None:
        self.fn = fn
        self.on_end = on_end  # told each stream's end (reason eos, stopped, error or removed)
        self.lossless = lossless
        self.name = name or f"callback:{getattr(fn, '__name__', 'fn')}"

    @classmethod
    def from_config(cls, config: CallbackSinkConfig, name: str | None = None) -> CallbackSink:
        """The sink of a ``callback`` entry: its ``target`` imported, its options applied."""
        check_config(config, CallbackSinkConfig)
        sink = cls(import_callable(config.target), config.lossless, name)
        sink.config = config
        return sink

    def write(self, result: Result) -> None:
        self.fn(result)

    def end_stream(self, eos: EndOfStream) -> None:
        if self.on_end is not None:
            self.on_end(eos)
