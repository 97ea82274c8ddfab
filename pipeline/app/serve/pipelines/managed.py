"""One pipeline run by the server: a keep-alive :class:`Pipeline`, the thread that iterates
its results into a :class:`ResultBuffer`, per-stream rates, and what it was built from
(the spec and each stream's config as sent, for the state file).

The thread (``serve-pipeline:<id>``) starts the pipeline through ``Pipeline.results(events=True)``
and so is its supervisor: it releases removed streams and raises a shared stage's error.
A stream's end (reason eos, stopped, error, removed) becomes an end record after its last
result. ``stop()`` drains the pipeline gracefully and joins the thread; a pipeline that
does not drain in time is aborted.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pipeline.app.pipeline import Pipeline
from pipeline.app.rates import RateMeter
from pipeline.app.serve.pipelines.buffer import ResultBuffer, end_record
from pipeline.core.items import EndOfStream
from pipeline.core.redact import redact_obj
from pipeline.vision.result import Result
from pipeline.wire.records import to_record

log = logging.getLogger("vidpipe.serve")

JOIN_MARGIN_S = 10.0  # after the drain timeout, before a stop gives up on a graceful end


class ManagedPipeline:
    """A running pipeline of the server (see the module docstring)."""

    def __init__(self, pipeline_id: str, pipeline: Pipeline, spec: dict[str, Any], buffer_size: int,
                 mask_format: str = "rle") -> None:
        self.id, self.pipeline, self.mask_format = pipeline_id, pipeline, mask_format
        self.spec = {k: v for k, v in spec.items() if k != "streams"}  # the streams are kept one by one
        self.stream_configs: dict[str, dict[str, Any]] = {s["id"]: s for s in spec.get("streams", [])}
        self.paused_streams: set[str] = set()
        self.paused = False
        self.buffer = ResultBuffer(buffer_size)
        self.rates = RateMeter()
        self.error: str | None = None
        self.created = time.time()
        self.thread = threading.Thread(target=self._run, name=f"serve-pipeline:{pipeline_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.pipeline.results(events=True):
                if isinstance(item, EndOfStream):
                    self.rates.forget(item.stream_id)
                    self.buffer.push(end_record(item.stream_id, item.reason))
                else:
                    self._push(item)
        except Exception as exc:  # noqa: BLE001 - a shared stage failed: the pipeline stopped; its status says why
            self.error = str(exc)
            log.error("pipeline %s failed: %s", self.id, exc)
        finally:
            self.buffer.close()

    def _push(self, result: Result) -> None:
        self.rates.tick(result.stream_id)
        self.buffer.push(to_record(result, self.mask_format))

    @property
    def state(self) -> str:
        if self.error:
            return "failed"
        if self.pipeline.finished or not self.thread.is_alive():
            return "finished"
        return "paused" if self.paused else "running"

    def stream_status(self) -> dict[str, dict[str, Any]]:
        """Per stream: state, fps, latency percentiles (ms), drops and counters; removed
        streams keep their final line (state ``removed``)."""
        p = self.pipeline
        removed, _, _ = p.control.snapshot()
        latency = p.metrics.latency_summary()
        out = dict(removed)
        for sid, stats in dict(p.streams).items():
            line = stats.summary()
            line["fps"] = self.rates.fps(sid)
            line["latency_ms"] = latency.get(sid, {})
            line["paused"] = stats.paused or self.paused
            out[sid] = line
        return out

    def status(self) -> dict[str, Any]:
        p = self.pipeline
        return redact_obj({  # type: ignore[return-value]  # a stream's error may quote a camera's URL
            "id": self.id, "name": p.name, "model": p.model.name, "state": self.state,
            "streams": self.stream_status(), "seq": self.buffer.seq,
            "errors": [*([self.error] if self.error else []), *p.problems, *p.control.problems],
            "created": self.created})

    def brief(self) -> dict[str, Any]:
        """The list's line: id, name, state and stream ids."""
        return {"id": self.id, "name": self.pipeline.name, "state": self.state, "streams": sorted(self.pipeline.streams)}

    def spec_now(self) -> dict[str, Any]:
        """The spec with the streams it has now (what a restart rebuilds)."""
        return {**self.spec, "streams": list(self.stream_configs.values())}

    def stop(self, drain_timeout_s: float | None = None) -> dict[str, Any]:
        """Stop gracefully (abort after the drain timeout), join the thread; the summary."""
        p = self.pipeline
        if drain_timeout_s is not None:
            p.drain_timeout_s = drain_timeout_s
        if not p.finished:
            p.stop()
        self.thread.join(p.drain_timeout_s + JOIN_MARGIN_S)
        if self.thread.is_alive():
            log.error("pipeline %s did not drain in %g s: aborting it", self.id, p.drain_timeout_s)
            p.abort()
            self.thread.join(JOIN_MARGIN_S)
        self.buffer.close()
        return p.summary()
