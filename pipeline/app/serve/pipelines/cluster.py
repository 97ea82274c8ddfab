"""A pipeline of ``vidpipe serve --cluster ray[://HOST:PORT]``: its streams run on the Ray
cluster's workers (:class:`ClusterPipeline`), its results come back here into the same
numbered buffer, so the ``/pipelines`` routes, ``vidpipe streams`` and the state file
work as they do in one process. A stream's status line adds where it runs (``worker``),
its last delivered frame and how often it moved; ``GET /pipelines/{id}`` adds the
cluster's placement (``cluster``: workers, totals, recent events).
"""

from __future__ import annotations

from typing import Any

from pipeline.app.cluster.pipeline import ClusterPipeline
from pipeline.app.config import PipelineConfig
from pipeline.app.serve.pipelines.managed import ManagedPipeline
from pipeline.core.redact import redact_obj


class ClusterManagedPipeline(ManagedPipeline):
    """:class:`ManagedPipeline` over a :class:`ClusterPipeline` (see the module docstring)."""

    pipeline: ClusterPipeline  # type: ignore[assignment]  # the same surface the base uses, not a Pipeline

    def __init__(self, pipeline_id: str, config: PipelineConfig, address: str | None, spec: dict[str, Any],
                 buffer_size: int, mask_format: str = "rle") -> None:
        super().__init__(pipeline_id, ClusterPipeline(config, address=address), spec, buffer_size,  # type: ignore[arg-type]
                         mask_format)

    def stream_status(self) -> dict[str, dict[str, Any]]:
        out = {}
        for sid, line in self.pipeline.status()["streams"].items():
            out[sid] = {**line, "results": line["delivered"], "drops": {},
                        "paused": line["state"] == "paused" or self.paused}
        return out

    def status(self) -> dict[str, Any]:
        p = self.pipeline
        placement = p.status()
        return redact_obj({  # type: ignore[return-value]  # a stream's error may quote a camera's URL
            "id": self.id, "name": p.name, "model": p.config.model.name or p.config.model.path, "state": self.state,
            "streams": self.stream_status(), "seq": self.buffer.seq, "errors": [*([self.error] if self.error else [])],
            "created": self.created,
            "cluster": {"workers": placement["workers"], "totals": placement["totals"], "events": placement["events"]}})

    def brief(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.pipeline.name, "state": self.state,
                "streams": sorted(sid for sid, s in self.pipeline.status()["streams"].items()
                                  if s["state"] not in ("removed",))}
