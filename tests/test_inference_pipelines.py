"""Roboflow's ``/inference_pipelines/*`` on ``vidpipe serve``: Roboflow's own ``inference-sdk``
(its own virtualenv, unchanged) starts pipelines from Workflow specs with the seed's
instance-segmentation block (v1; v2 with ByteTrack v3) on a real encoded video, reads their
status, consumes results, pauses, resumes and terminates them; bad specs are 422s."""

from __future__ import annotations

import json
import os
import subprocess

import cv2
import httpx
import pytest

from tests.serve_process import REPO, ServeProcess
from tests.test_serve import b64
from tests.workflow_specs import PROPS, infer_body, parameters, seg_spec

SDK_PYTHON = REPO / ".venv-rfsdk" / "bin" / "python"
CONFIG = {"batching": {"max_batch_size": 1, "max_wait_ms": 1}, "backend": {"intra_op_threads": 1}}
FRAMES = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServeProcess(tmp_path_factory.mktemp("serve"), CONFIG).start()
    yield proc
    assert proc.stop() == 143, proc.log
    assert "Traceback" not in proc.log, proc.log


def tracked_spec() -> dict:
    spec = seg_spec(2)
    spec["steps"].append({"type": "roboflow_core/byte_tracker@v3", "name": "track", "image": "$inputs.image",
                          "detections": "$steps.seg.predictions", "lost_track_buffer": 60})
    spec["outputs"] += [{"type": "JsonField", "name": "tracked", "selector": "$steps.track.tracked_detections"},
                        {"type": "JsonField", "name": "new", "selector": "$steps.track.new_instances"},
                        {"type": "JsonField", "name": "seen", "selector": "$steps.track.already_seen_instances"},
                        {"type": "JsonField", "name": "model", "selector": "$steps.seg.model_id"}]
    return spec


def close(consumed: list[dict], local: list[dict]) -> None:
    """The same detections, up to the two decoders' pixels (PyAV in the pipeline, OpenCV here)
    and the record's rounding: classes in order, boxes within 0.5 px, scores within 0.01."""
    assert [p["class"] for p in consumed] == [p["class"] for p in local]
    for a, b in zip(consumed, local):
        assert all(a[k] == pytest.approx(b[k], abs=0.5) for k in ("x", "y", "width", "height")), (a, b)
        assert a["confidence"] == pytest.approx(b["confidence"], abs=0.01) and len(a["points"]) > 2


def decoded(clip, count: int) -> list:
    cap = cv2.VideoCapture(str(clip))
    frames = [cap.read()[1] for _ in range(count)]
    cap.release()
    return frames


@pytest.mark.skipif(not SDK_PYTHON.exists(), reason="no .venv-rfsdk: make rfsdk-venv (make test makes it)")
def test_inference_sdk_drives_workflow_pipelines(server, small_clip, tmp_path):
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps({
        "v1": {"specification": seg_spec(1), "parameters": parameters()},
        "v2": {"specification": tracked_spec(), "parameters": parameters(), "excluded": ["all"]},
        "unknown": {"specification": seg_spec(1, type="roboflow_core/sam2@v1"), "parameters": parameters()}}))
    env = dict(os.environ, TLDEXTRACT_CACHE=str(tmp_path / "tldextract"), PYTHONPATH="", PYTHONWARNINGS="ignore")
    done = subprocess.run([str(SDK_PYTHON), str(REPO / "tests" / "rfsdk_pipelines.py"), server.url, str(small_clip),
                           str(specs), str(FRAMES)], capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr + server.log
    out = json.loads(done.stdout)
    frames = decoded(small_clip, FRAMES)
    for name in ("v1", "v2"):
        run = out[name]
        pid = run["started"]["context"]["pipeline_id"]
        assert run["started"]["status"] == "success" and pid in run["listed"]["pipelines"], name
        assert run["status"]["report"]["state"] == "running"
        assert run["status_paused"]["report"]["state"] == "paused"
        assert run["status_resumed"]["report"]["state"] == "running"
        assert run["terminated"]["status"] == "success"
        assert run["after"]["error"] == 404 and pid in run["after"]["message"]
        consumed = run["consumed"]
        assert [c["frames_metadata"][0]["frame_id"] for c in consumed] == list(range(FRAMES))  # in order, once each
        assert {c["frames_metadata"][0]["source_id"] for c in consumed} == {0}
        for c, frame in zip(consumed, frames):
            local = httpx.post(f"{server.url}/infer/instance_segmentation",
                               json={**infer_body(), "image": b64(frame)}, timeout=120).json()
            (outputs,) = c["outputs"]
            assert outputs["predictions"]["image"] == local["image"]
            close(outputs["predictions"]["predictions"], local["predictions"])
            assert all("tracker_id" not in p for p in outputs["predictions"]["predictions"])
    v2 = [c["outputs"][0] for c in out["v2"]["consumed"]]
    assert all("all" not in o and o["model"] == PROPS["model_id"] for o in v2)  # excluded_fields honoured
    first = v2[0]
    assert first["tracked"]["predictions"] and all("tracker_id" in p for p in first["tracked"]["predictions"])
    assert len(first["new"]["predictions"]) == len(first["tracked"]["predictions"]) and not first["seen"]["predictions"]
    later = v2[-1]
    assert len(later["new"]["predictions"]) + len(later["seen"]["predictions"]) == len(later["tracked"]["predictions"])
    assert later["seen"]["predictions"]  # the same shapes, tracked from frame to frame
    assert out["unknown"]["error"] == 422 and "roboflow_core/sam2@v1" in out["unknown"]["message"]


def initialise(server, spec, video, **proc) -> httpx.Response:
    body = {"video_configuration": {"type": "VideoConfiguration", "video_reference": video},
            "processing_configuration": {"type": "WorkflowConfiguration", "workflow_specification": spec,
                                         "workflows_parameters": parameters(), **proc},
            "sink_configuration": {"type": "MemorySinkConfiguration", "results_buffer_size": 8}}
    return httpx.post(f"{server.url}/inference_pipelines/initialise", json=body, timeout=120)


def test_bad_pipeline_requests_are_clear_errors(server, small_clip, tmp_path):
    two = seg_spec(1)
    two["steps"].append({**two["steps"][0], "name": "seg2"})
    cases = [(seg_spec(2, confidence="$inputs.nope"), str(small_clip), {}, 422, "$inputs.nope"),
             (two, str(small_clip), {}, 422, "one model step, the spec has 2 (seg, seg2)"),
             (seg_spec(2), str(small_clip), {"image_input_name": "frame"}, 422, "$inputs.frame"),
             (seg_spec(2), str(tmp_path / "missing.mp4"), {}, 422, "missing.mp4"),
             (seg_spec(2), {"no": 1}, {}, 422, "video_reference")]
    good = initialise(server, seg_spec(2), str(small_clip))
    assert good.status_code == 200, good.text
    pid = good.json()["context"]["pipeline_id"]
    for spec, video, proc, status, named in cases:
        r = initialise(server, spec, video, **proc)
        assert r.status_code == status and named in r.json()["message"], r.text
    # nothing of the refused ones runs; the running one is untouched and still answers
    assert httpx.get(f"{server.url}/inference_pipelines/list", timeout=60).json()["pipelines"] == [pid]
    got = httpx.get(f"{server.url}/inference_pipelines/{pid}/consume", timeout=60).json()
    for _ in range(20):  # each call waits up to a second for a frame
        if got["outputs"]:
            break
        got = httpx.get(f"{server.url}/inference_pipelines/{pid}/consume", timeout=60).json()
    # The oldest frame still buffered: frame 0 unless the refused requests outlasted the
    # buffer (8 frames) on a loaded runner, when the oldest were dropped as Roboflow's are.
    first = got["frames_metadata"][0]["frame_id"]
    assert got["outputs"][0]["predictions"]["predictions"]
    nxt = httpx.get(f"{server.url}/inference_pipelines/{pid}/consume", timeout=60).json()
    assert [m["frame_id"] for m in nxt["frames_metadata"]] in ([], [first + 1]), (first, nxt)  # [] past the clip's end
    assert httpx.post(f"{server.url}/inference_pipelines/{pid}/terminate", timeout=120).status_code == 200
    r = httpx.get(f"{server.url}/inference_pipelines/nope/status", timeout=60)
    assert r.status_code == 404 and "nope" in r.json()["message"]
    r = httpx.post(f"{server.url}/inference_pipelines/nope/terminate", timeout=60)
    assert r.status_code == 404


def test_a_restarted_server_consumes_its_workflow_pipelines(small_clip, tmp_path):
    """With --state, a pipeline started from a workflow runs again after a restart, and consume
    answers the workflow's outputs for it."""
    state = tmp_path / "state.json"
    with ServeProcess(tmp_path, CONFIG, args=("--state", str(state))) as first:
        r = initialise(first, tracked_spec(), str(small_clip))
        assert r.status_code == 200, r.text
        pid = r.json()["context"]["pipeline_id"]
    assert (tmp_path / "state.json.workflows.json").exists()
    # A Workflow spec has no place for threads or providers: the server's `backend` section
    # (CONFIG: intra_op_threads 1) is what its pipelines load their model with, as the models it serves.
    saved = {e["id"]: e["spec"] for e in json.loads(state.read_text())["pipelines"]}
    assert saved[pid]["model"]["intra_op_threads"] == 1 and saved[pid]["model"]["postprocess"]["device"] == "cpu"
    with ServeProcess(tmp_path, CONFIG, args=("--state", str(state))) as second:
        assert httpx.get(f"{second.url}/inference_pipelines/list", timeout=60).json()["pipelines"] == [pid]
        got = httpx.get(f"{second.url}/inference_pipelines/{pid}/consume", timeout=60).json()
        for _ in range(20):  # each call waits up to a second for a frame
            if got["outputs"]:
                break
            got = httpx.get(f"{second.url}/inference_pipelines/{pid}/consume", timeout=60).json()
        assert got["frames_metadata"][0]["frame_id"] == 0
        assert got["outputs"][0]["model"] == PROPS["model_id"] and "tracked" in got["outputs"][0]
        assert httpx.post(f"{second.url}/inference_pipelines/{pid}/terminate", timeout=120).status_code == 200
