"""A Workflow spec run on video: compiled to a vidpipe pipeline spec (one model step, at most
one ByteTrack step, a stream per video reference), and each result record read back as the
workflow's outputs for Roboflow's ``consume_inference_pipeline_result``.

A model step's ``predictions`` are what ``/workflows/run`` answers for the frame (no track
ids); a ByteTrack step's ``tracked_detections`` those that have a track, with ``tracker_id``; v3's
``new_instances`` / ``already_seen_instances`` split them by whether the track id was seen
before (the last ``instances_cache_size`` ids, as Roboflow's block keeps them).

Example:
    >>> stream_source(0), stream_source("rtsp://cam/1")["type"], stream_source("clip.mp4")
    ({'type': 'webcam', 'device': '/dev/video0'}, 'rtsp', {'type': 'file', 'path': 'clip.mp4'})
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.responses import prediction
from pipeline.app.serve.workflow_blocks import tracker_options
from pipeline.app.serve.workflow_run import PER_REQUEST
from pipeline.app.serve.workflow_spec import Step, Workflow, bad
from sinks.from_record import detections_from_record

LIVE_SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "url", "https": "url", "rtmp": "url", "udp": "url", "srt": "url"}


def stream_source(ref: Any) -> dict[str, Any]:
    """A Roboflow video reference (a camera index, a stream URL, a file path) as a source."""
    if isinstance(ref, bool) or not isinstance(ref, (int, str)) or ref == "":
        raise ServeError(422, f"invalid video_reference {ref!r}: a file path, a stream URL or a camera index")
    if isinstance(ref, int):
        return {"type": "webcam", "device": f"/dev/video{ref}"}
    scheme = ref.split("://", 1)[0].lower() if "://" in ref else ""
    if scheme in LIVE_SCHEMES:
        return {"type": LIVE_SCHEMES[scheme], "url": ref}
    return {"type": "file", "path": ref}


class VideoWorkflow:
    """A compiled spec bound to its parameters, for one pipeline: ``spec`` (vidpipe's) to
    create it, ``outputs(record)`` per frame result."""

    def __init__(self, wf: Workflow, params: dict[str, Any], image_input: str) -> None:
        self.wf, self.params = wf, params
        self.bound = wf.bind(params)
        models, trackers = wf.of_kind("model"), wf.of_kind("tracker")
        if len(models) != 1:
            raise bad(f"an inference pipeline runs one model step, the spec has {len(models)} "
                      f"({', '.join(s.name for s in models) or 'none'})")
        if len(trackers) > 1:
            raise bad(f"an inference pipeline runs one tracker step, the spec has {len(trackers)}")
        self.model: Step = models[0]
        self.tracker: Step | None = trackers[0] if trackers else None
        if self.model.selectors["images"] != f"$inputs.{image_input}":
            raise bad(f"step {self.model.name} reads {self.model.selectors['images']}, not the video's frames "
                      f"($inputs.{image_input}: image_input_name)")
        self.options = wf.postprocess(self.model.name, self.bound[self.model.name])
        self.model_id: str = self.bound[self.model.name]["model_id"]
        cache = int(self.bound[self.tracker.name].get("instances_cache_size", 16384)) if self.tracker else 0
        self.seen: OrderedDict[int, None] = OrderedDict()
        self.cache_size = max(cache, 1)

    @property
    def route(self) -> str:
        return self.model.block.route

    def spec(self, references: list[Any], max_fps: float | None) -> dict[str, Any]:
        """The vidpipe pipeline spec: streams ``"0"``, ``"1"``, ... (Roboflow's source ids)."""
        streams = [{"id": str(i), "source": stream_source(ref), **({"max_fps": max_fps} if max_fps else {})}
                   for i, ref in enumerate(references)]
        tracker = tracker_options(self.bound[self.tracker.name]) if self.tracker else None
        return {"name": f"workflow:{self.model.name}", "streams": streams, "tracker": tracker,
                "model": {"path": self.model_id, "postprocess": self.options.model_dump(mode="json")}}

    def _predictions(self, rec: dict[str, Any], tracked: bool) -> dict[str, Any]:
        dets = detections_from_record(rec)
        answer = prediction(dets, rec["width"], rec["height"], self.route, "roboflow", None, 0.0, None, self.model_id)
        out = {k: v for k, v in answer.items() if k not in PER_REQUEST}
        if not tracked and "predictions" in out:  # the model's own output: Roboflow's carries no track ids
            out["predictions"] = [{k: v for k, v in p.items() if k != "tracker_id"} for p in out["predictions"]]
        return out

    def _track_outputs(self, rec: dict[str, Any]) -> dict[str, Any]:
        tracked = self._predictions(rec, True)
        # as supervision's ByteTrack: detections without a track (not yet confirmed) are left out
        tracked["predictions"] = [p for p in tracked.get("predictions", []) if "tracker_id" in p]
        new: list[dict[str, Any]] = []
        old: list[dict[str, Any]] = []
        for p in tracked["predictions"]:
            tid = p["tracker_id"]
            (old if tid in self.seen else new).append(p)
            self.seen[tid] = None
            self.seen.move_to_end(tid)
            while len(self.seen) > self.cache_size:
                self.seen.popitem(last=False)
        image = tracked.get("image")
        return {"tracked_detections": tracked, "new_instances": {"image": image, "predictions": new},
                "already_seen_instances": {"image": image, "predictions": old}}

    def outputs(self, rec: dict[str, Any], excluded: set[str]) -> dict[str, Any]:
        """The spec's outputs for one frame's record (its ``JsonField`` names, less ``excluded``)."""
        steps: dict[str, dict[str, Any]] = {
            self.model.name: {"inference_id": str(uuid.uuid4()), "predictions": self._predictions(rec, False),
                              "model_id": self.model_id}}
        if self.tracker is not None:
            steps[self.tracker.name] = self._track_outputs(rec)
        out: dict[str, Any] = {}
        for name, selector in self.wf.outputs:
            if name in excluded:
                continue
            parts = selector.split(".")
            if parts[0] == "$inputs":
                out[name] = self.params.get(parts[1], self.wf.parameters.get(parts[1]))
            elif parts[2] == "*":
                block = self.wf.steps[parts[1]].block
                out[name] = {k: v for k, v in steps[parts[1]].items() if k in block.outputs}
            else:
                out[name] = steps[parts[1]][parts[2]]
        return out


def frame_metadata(rec: dict[str, Any]) -> dict[str, Any]:
    """Roboflow's ``frames_metadata`` entry of a record."""
    stamp = datetime.fromtimestamp(float(rec.get("captured_at") or 0.0), tz=timezone.utc).isoformat()
    sid = rec["stream"]
    return {"frame_id": rec["frame"], "frame_timestamp": stamp, "source_id": int(sid) if sid.isdigit() else sid}
