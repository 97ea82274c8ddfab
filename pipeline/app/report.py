"""A pipeline's summary: totals, per stream (the streams removed while it ran too), per
stage, per ring, and the errors and problems of the run (``Pipeline.summary()``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipeline.core.redact import redact_obj

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.pipeline import Pipeline


def summary(p: Pipeline) -> dict[str, Any]:
    end = p._t_end or time.perf_counter()
    wall = max(1e-9, end - p._t_start) if p._t_start else 0.0
    streams = dict(p.streams)  # one view: streams may join or leave meanwhile
    removed, totals, drops = p.control.snapshot()
    for s in streams.values():
        for key in ("frames", "results", "detections"):
            totals[key] += getattr(s, key)
        drops.update(s.drops_snapshot())
    per_stream = {**removed, **{sid: s.summary() for sid, s in streams.items()}}
    return redact_obj({  # type: ignore[return-value]  # errors may quote a URL
        "pipeline": p.name,
        "model": p.model.name,
        "providers": p.model.backend.active_providers,
        "requested_providers": p.model.backend.requested_providers,
        "provider_fallback": p.model.backend.fell_back,
        "postprocess_device": p.model.postprocess_device,
        "wall_s": round(wall, 3),
        "frames": totals["frames"],
        "results": totals["results"],
        "detections": totals["detections"],
        "fps": round(totals["results"] / wall, 2) if wall else 0.0,
        "drops": dict(drops),
        "latency_ms": p.metrics.latency_summary(),
        "batches": p.inference.batches,
        "streams": per_stream,
        "stages": {st.name: st.stats() for st in p.stages},
        "rings": {r.name: {"capacity": r.capacity, "policy": r.policy, "puts": r.stats.puts, "dropped": r.stats.dropped,
                           "max_depth": r.stats.max_depth} for r in p.rings},
        "errors": [str(e) for e in p.errors] + p.problems,
    })
