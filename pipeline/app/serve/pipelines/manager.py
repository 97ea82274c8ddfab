"""The server's pipelines: create from a vidpipe spec, list, status, streams added, removed,
paused and resumed, results read, terminate. The Python API the HTTP routes (and the
Roboflow-compatible ``/inference_pipelines`` routes) call; blocking, thread-safe, and every
failure a :class:`ServeError` (404 unknown pipeline or stream, 409 a stream id that exists
or a pipeline that is finishing, 422 a bad spec or stream config or an input that cannot
be opened).

A spec is the YAML of ``vidpipe run`` (validated by :class:`PipelineConfig`), run with
``keep_alive: true``. Its ``model.path`` is a model id of the server (a bundled name, a
file under ``--models``, an alias; never a path: :meth:`ModelRegistry.resolve`). Each
pipeline loads its own :class:`Model`: a model's preprocessing reuses one batch buffer, so
the inference routes' worker and a pipeline's batcher cannot share one.

Example::

    manager = PipelineManager(resolve_model=registry.resolve)
    pid = manager.create({"streams": [...], "sinks": [...]})
    manager.add_stream(pid, {"id": "cam2", "source": {"type": "rtsp", "url": "rtsp://..."}})
    records, next_seq, dropped = manager.read(pid, after=0)
    manager.terminate(pid)
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.app.cluster_options import parse_cluster_url
from pipeline.app.config import PipelineConfig, load_config_dict
from pipeline.app.pipeline import Pipeline
from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.pipelines.cluster import ClusterManagedPipeline
from pipeline.app.serve.pipelines.managed import ManagedPipeline
from pipeline.app.serve.pipelines.state import StateFile
from pipeline.core.errors import PipelineFinishedError, StreamExistsError, UnknownStreamError, VidpipeError

log = logging.getLogger("vidpipe.serve")

BUFFER_SIZE = 1000  # records kept per pipeline for polling readers
START_TIMEOUT_S = 60.0


@contextmanager
def _as_serve_errors(where: str) -> Iterator[None]:
    """The core's errors as HTTP statuses, the message prefixed with ``where``."""
    try:
        yield
    except ServeError:
        raise
    except VidpipeError as exc:
        message = str(exc) if where in str(exc) else f"{where}: {exc}"
        if isinstance(exc, UnknownStreamError):
            raise ServeError(404, message) from None
        if isinstance(exc, (StreamExistsError, PipelineFinishedError)):
            raise ServeError(409, message) from None
        raise ServeError(422, message) from None  # config, source, model, output errors: the request's content


class PipelineManager:
    """Pipelines by id; each runs in its own thread (:class:`ManagedPipeline`), stopped and
    joined by :meth:`terminate` and :meth:`close`. ``state``: a file written on each change
    and read by :meth:`restore`."""

    def __init__(self, resolve_model: Callable[[str], str | Path] | None = None, state: Path | str | None = None,
                 buffer_size: int = BUFFER_SIZE, cluster: str | None = None) -> None:
        """``cluster``: ``ray`` or ``ray://HOST:PORT``: every pipeline's streams run on that
        Ray cluster's workers (:mod:`pipeline.app.serve.pipelines.cluster`)."""
        self.resolve_model = resolve_model
        self.cluster_address = parse_cluster_url(cluster) if cluster else None
        self.cluster = cluster
        self.state = StateFile(Path(state)) if state is not None else None
        self.buffer_size = buffer_size
        self.pipelines: dict[str, ManagedPipeline] = {}
        # State-file entries that failed to restore: kept in the file (a later start retries
        # them), listed with their error, forgotten by terminate().
        self.unrestored: dict[str, tuple[dict[str, Any], str]] = {}
        self._restoring = False  # no writes while restoring: the file still holds what is not yet back
        self._creating: set[str] = set()  # ids being created: a second create of one is refused
        self._lock = threading.RLock()

    # -- create ---------------------------------------------------------------------------
    def create(self, spec: dict[str, Any], pipeline_id: str | None = None, *, buffer_size: int | None = None,
               mask_format: str = "rle", save: bool = True) -> str:
        """Validate ``spec``, load its model, open its sources and outputs, start it; its id."""
        if not isinstance(spec, dict):
            raise ServeError(422, "a pipeline spec must be a mapping (the YAML of vidpipe run)")
        pid = pipeline_id or uuid.uuid4().hex[:12]
        with self._lock:
            if pid in self.pipelines or pid in self._creating or pid in self.unrestored:
                raise ServeError(409, f"a pipeline {pid!r} exists")
            self._creating.add(pid)
        try:
            with _as_serve_errors("pipeline spec"):
                cfg = self._config(spec)
                managed = self._build(pid, cfg, spec, buffer_size or self.buffer_size, mask_format)
            self._start(managed)
            with self._lock:
                self.pipelines[pid] = managed
        finally:
            with self._lock:
                self._creating.discard(pid)
        log.info("pipeline %s created (%s, %d stream(s))", pid, managed.pipeline.name, len(spec.get("streams") or []))
        if save:
            self.save()
        return pid

    def _build(self, pid: str, cfg: PipelineConfig, spec: dict[str, Any], buffer_size: int,
               mask_format: str) -> ManagedPipeline:
        """In one process: the model loads and the sources open here; on a cluster: in the
        workers, when it starts."""
        if self.cluster is not None:
            return ClusterManagedPipeline(pid, cfg, self.cluster_address, spec, buffer_size, mask_format)
        return ManagedPipeline(pid, Pipeline.from_config(cfg), spec, buffer_size, mask_format)

    def _config(self, spec: dict[str, Any]) -> PipelineConfig:
        cfg = load_config_dict({**spec, "keep_alive": True}, "pipeline spec")
        if self.resolve_model is None:
            return cfg
        model_id = cfg.model.path
        try:
            target = self.resolve_model(model_id)
        except ServeError as exc:
            raise ServeError(422, f"pipeline spec at model.path: {exc.message}") from None
        model = cfg.model.model_copy(update={"path": str(target), "name": cfg.model.name or model_id})
        return cfg.model_copy(update={"model": model})

    def _start(self, managed: ManagedPipeline) -> None:
        """Start its thread and wait until the pipeline runs (outputs opened) or fails."""
        managed.start()
        p = managed.pipeline
        while not p.started and managed.thread.is_alive():
            managed.thread.join(0.02)  # the thread opens the outputs, then starts the stages
        if not p.started:
            for src in getattr(p, "sources", []):  # (a cluster pipeline's sources are on its workers)
                src.source.close()
            raise ServeError(422, f"pipeline spec: the pipeline could not start: {managed.error}")

    # -- read -----------------------------------------------------------------------------
    def get(self, pipeline_id: str) -> ManagedPipeline:
        with self._lock:
            managed = self.pipelines.get(pipeline_id)
            have = ", ".join(sorted(self.pipelines)) or "none"
        if managed is None:
            if pipeline_id in self.unrestored:
                raise ServeError(404, f"pipeline {pipeline_id!r} was not restored: {self.unrestored[pipeline_id][1]} "
                                      f"(DELETE /pipelines/{pipeline_id} forgets it)")
            raise ServeError(404, f"no pipeline {pipeline_id!r} (pipelines: {have})")
        return managed

    def list_pipelines(self) -> list[dict[str, Any]]:
        """Every pipeline: id, name, state and stream ids."""
        with self._lock:
            pipelines, unrestored = list(self.pipelines.values()), dict(self.unrestored)
        return [*(m.brief() for m in pipelines),
                *({"id": pid, "state": "not restored", "error": error} for pid, (_, error) in unrestored.items())]

    def status(self, pipeline_id: str) -> dict[str, Any]:
        return self.get(pipeline_id).status()

    def statuses(self) -> list[dict[str, Any]]:
        """The status of every running pipeline (for the server's metrics)."""
        with self._lock:
            pipelines = list(self.pipelines.values())
        return [m.status() for m in pipelines]

    def read(self, pipeline_id: str, after: int = 0, limit: int | None = None) -> tuple[list[dict[str, Any]], int, int]:
        """Records after seq ``after``, the next seq, and how many the reader missed."""
        return self.get(pipeline_id).buffer.read(after, limit)

    # -- change ---------------------------------------------------------------------------
    def add_stream(self, pipeline_id: str, config: dict[str, Any]) -> str:
        """Add a stream (a ``streams:`` entry); its id. A camera that never answers is added
        and retried in its own thread (its state says so); the others never wait."""
        managed = self.get(pipeline_id)
        if not isinstance(config, dict):
            raise ServeError(422, "a stream config must be a mapping (a streams: entry)")
        with _as_serve_errors(f"pipeline {pipeline_id}"):
            sid = managed.pipeline.add_stream(config)
        with self._lock:  # save() reads them
            managed.stream_configs = {**managed.stream_configs, sid: config}
        self.save()
        return sid

    def remove_stream(self, pipeline_id: str, stream_id: str, drain: bool = True) -> dict[str, Any]:
        """Remove a stream (drained by default); its final summary once it is released."""
        managed = self.get(pipeline_id)
        with _as_serve_errors(f"pipeline {pipeline_id}"):
            final = managed.pipeline.remove_stream(stream_id, drain=drain)
        with self._lock:
            managed.stream_configs = {k: v for k, v in managed.stream_configs.items() if k != stream_id}
            managed.paused_streams.discard(stream_id)
        self.save()
        return final or {"state": "removed"}

    def pause(self, pipeline_id: str, stream_id: str | None = None) -> None:
        """Pause the pipeline, or one of its streams."""
        self._pause(pipeline_id, stream_id, True)

    def resume(self, pipeline_id: str, stream_id: str | None = None) -> None:
        self._pause(pipeline_id, stream_id, False)

    def _pause(self, pipeline_id: str, stream_id: str | None, paused: bool) -> None:
        managed = self.get(pipeline_id)
        p = managed.pipeline
        with _as_serve_errors(f"pipeline {pipeline_id}"):
            if stream_id is None:
                (p.pause if paused else p.resume)()
                managed.paused = paused
            else:
                (p.pause_stream if paused else p.resume_stream)(stream_id)
                (managed.paused_streams.add if paused else managed.paused_streams.discard)(stream_id)
        self.save()

    def terminate(self, pipeline_id: str) -> dict[str, Any]:
        """Stop the pipeline (a graceful drain), join its thread, forget it; its summary."""
        with self._lock:
            forgotten = self.unrestored.pop(pipeline_id, None)
        if forgotten is not None:
            self.save()
            return {"state": "not restored", "errors": [forgotten[1]]}
        managed = self.get(pipeline_id)
        with self._lock:
            self.pipelines.pop(pipeline_id, None)
        self.save()
        summary = managed.stop()
        log.info("pipeline %s terminated: %d results", pipeline_id, summary.get("results", 0))
        return summary

    # -- the server's lifetime -------------------------------------------------------------
    def end_event_streams(self) -> None:
        """The server is stopping: close every buffer so that event streams end (and the
        HTTP server can finish its open responses); the pipelines run on until :meth:`close`."""
        with self._lock:
            pipelines = list(self.pipelines.values())
        for managed in pipelines:
            managed.buffer.close()

    def close(self) -> None:
        """Stop every pipeline (all at once, then join them); the state file keeps them."""
        with self._lock:
            pipelines, self.pipelines = list(self.pipelines.values()), {}
        for managed in pipelines:
            managed.buffer.close()
            if not managed.pipeline.finished:
                managed.pipeline.stop()
        for managed in pipelines:
            managed.stop()

    def save(self) -> None:
        """Write the state file (if any): every pipeline's spec, streams and pauses."""
        if self.state is None or self._restoring:
            return
        with self._lock:
            self.state.write([*(_entry(m) for m in self.pipelines.values()),
                              *(entry for entry, _ in self.unrestored.values())])

    def restore(self) -> list[str]:
        """Recreate the pipelines of the state file; one that fails is logged, listed as
        ``not restored`` and kept in the file (the others start). Returns the one-line errors."""
        if self.state is None:
            return []
        errors: list[str] = []
        self._restoring = True
        try:
            self._restore_all(self.state.read(), errors)
        finally:
            self._restoring = False
        self.save()
        return errors

    def _restore_all(self, entries: list[dict[str, Any]], errors: list[str]) -> None:
        assert self.state is not None
        for entry in entries:
            try:
                pid = self.create(entry["spec"], entry["id"], buffer_size=entry.get("buffer_size"),
                                  mask_format=entry.get("mask_format", "rle"), save=False)
                for sid in entry.get("paused_streams", []):
                    self.pause(pid, sid)
                if entry.get("paused"):
                    self.pause(pid)
            except ServeError as exc:
                errors.append(f"state file {self.state.path}: pipeline {entry['id']!r}: {exc.message}")
                log.error("%s", errors[-1])
                with self._lock:
                    if entry["id"] not in self.pipelines:  # (a pause that failed leaves it running)
                        self.unrestored[entry["id"]] = (entry, exc.message)


def _entry(m: ManagedPipeline) -> dict[str, Any]:
    return {"id": m.id, "spec": m.spec_now(), "paused": m.paused, "paused_streams": sorted(m.paused_streams),
            "buffer_size": m.buffer.size, "mask_format": m.mask_format}
