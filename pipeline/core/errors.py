"""Errors vidpipe reports to users: each names what is wrong and where.

The CLI turns a :class:`VidpipeError` into one line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VidpipeError(Exception):
    """Bad input (config, URL, file, model, message): a one-line, user-facing message."""


class ConfigError(VidpipeError):
    """The pipeline configuration is invalid; the message names the field path."""


class ModelError(VidpipeError):
    """The model file is missing, not ONNX, or of an unknown layout."""


class SourceError(VidpipeError):
    """A source cannot be opened or read (missing, unreadable, truncated, empty)."""


class StageError(VidpipeError):
    """A stage thread raised: names the stage and the stream it was working on."""

    def __init__(self, stage: str, stream: str | None, error: BaseException) -> None:
        self.stage = stage
        self.stream = stream
        self.error = error
        where = f"stage {stage!r}" + (f" on stream {stream!r}" if stream else "")
        super().__init__(f"{where} failed: {type(error).__name__}: {error}")


class StreamError(VidpipeError, ValueError):
    """A runtime stream operation was refused (``Pipeline.add_stream``, ``remove_stream``,
    ``pause_stream``...): the message names the stream and why."""


class UnknownStreamError(StreamError):
    """No stream of that id in the pipeline (an HTTP layer: 404)."""


class StreamExistsError(StreamError):
    """A stream of that id is already in the pipeline (an HTTP layer: 409)."""


class PipelineFinishedError(StreamError):
    """The pipeline has finished or is stopping: streams can no longer change (409)."""


class ClusterError(VidpipeError):
    """Cluster mode (Ray) refused or failed an operation: an unreachable address, a worker
    that could not start or load its model, resources the cluster cannot give."""
