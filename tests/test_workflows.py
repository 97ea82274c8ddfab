"""Roboflow Workflow specs on ``vidpipe serve``: the compiler's checks, and ``POST /workflows/run``
answering what ``/infer/instance_segmentation`` answers for the same image and options, over
plain HTTP and through Roboflow's own ``inference-sdk`` (its own virtualenv, unchanged)."""

from __future__ import annotations

import json
import os
import subprocess

import cv2
import httpx
import pytest

from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.workflow_blocks import tracker_options
from pipeline.app.serve.workflow_spec import compile_workflow
from pipeline.track.config import TrackerConfig
from tests.serve_process import REPO, ServeProcess
from tests.test_serve import b64, without_ids
from tests.workflow_specs import BOUND, PROPS, infer_body, parameters, seg_spec

SDK_PYTHON = REPO / ".venv-rfsdk" / "bin" / "python"
CONFIG = {"preload": ["shapes-yolov8seg"], "models_dir": str(REPO / "tests" / "fixtures" / "ultralytics"),
          "batching": {"max_batch_size": 1, "max_wait_ms": 1},
          "backend": {"intra_op_threads": 1}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServeProcess(tmp_path_factory.mktemp("serve"), CONFIG).start()
    yield proc
    assert proc.stop() == 143, proc.log
    assert "Traceback" not in proc.log, proc.log


@pytest.fixture(scope="module")
def frame(small_clip):
    cap = cv2.VideoCapture(str(small_clip))
    for _ in range(10):  # a frame with shapes of every class in view
        ok, image = cap.read()
        assert ok
    cap.release()
    return image


def refused(spec, match: str) -> None:
    with pytest.raises(ServeError) as err:
        compile_workflow(spec)
    assert err.value.status == 422 and match in err.value.message, err.value.message


def test_the_seed_block_compiles_with_every_property_bound():
    wf = compile_workflow(seg_spec(2))
    opts = wf.postprocess("seg", wf.bind(parameters())["seg"])
    assert {k: getattr(opts, k) for k in PROPS if k != "model_id"} == {k: v for k, v in PROPS.items() if k != "model_id"}
    # an unbound parameter falls back to its default_value, then to the block's default (Roboflow's)
    spec = seg_spec(1)
    spec["inputs"][2]["default_value"] = 0.7  # confidence
    wf = compile_workflow(spec)
    props = wf.bind({"model_id": "m"})["seg"]
    assert props["confidence"] == 0.7 and props["mask_decode_mode"] == "accurate" and props["class_filter"] is None


def test_bad_specs_name_what_is_wrong():
    refused(seg_spec(2, type="roboflow_core/sam3@v1"), "unknown block 'roboflow_core/sam3@v1' in step seg")
    refused(seg_spec(2, confidence="$inputs.nope"), "bad binding $inputs.nope in seg.confidence")
    refused(seg_spec(2, images="$inputs.frames"), "bad binding $inputs.frames in seg.images")
    refused(seg_spec(2, colour="red"), "has no property 'colour'")
    missing = seg_spec(2)
    missing["outputs"].append({"type": "JsonField", "name": "x", "selector": "$steps.gone.predictions"})
    refused(missing, "bad binding '$steps.gone.predictions' in output x")
    v1_model_id = seg_spec(1)
    v1_model_id["outputs"].append({"type": "JsonField", "name": "m", "selector": "$steps.seg.model_id"})
    refused(v1_model_id, "step seg has no output 'model_id'")  # only v2 outputs it
    tracker = seg_spec(2)
    tracker["steps"].append({"type": "roboflow_core/byte_tracker@v3", "name": "t", "image": "$inputs.image",
                             "detections": "$steps.nope.predictions"})
    refused(tracker, "bad binding $steps.nope.predictions in t.detections")
    wf = compile_workflow(seg_spec(2))
    with pytest.raises(ServeError, match="step seg: invalid confidence"):
        wf.postprocess("seg", wf.bind({**parameters(), "confidence": 2})["seg"])


def test_byte_tracker_options_map_onto_vidpipes_tracker():
    spec = seg_spec(2)
    spec["steps"].append({"type": "roboflow_core/byte_tracker@v3", "name": "t", "image": "$inputs.image",
                          "detections": "$steps.seg.predictions", "lost_track_buffer": 60,
                          "minimum_consecutive_frames": 3})
    wf = compile_workflow(spec)
    config = TrackerConfig.model_validate(tracker_options(wf.bind(parameters())["t"]))
    assert (config.lost_track_seconds, config.minimum_consecutive_frames, config.match_threshold) == (2.0, 3, 0.8)


def run(server, spec, inputs) -> httpx.Response:
    return httpx.post(f"{server.url}/workflows/run", json={"specification": spec, "inputs": inputs}, timeout=120)


def test_run_workflow_answers_what_infer_answers(server, frame):
    infer = httpx.post(f"{server.url}/infer/instance_segmentation",
                       json={**infer_body(), "image": b64(frame)}, timeout=120).json()
    assert {p["class"] for p in infer["predictions"]} == {"circle", "triangle"}  # the filter bit, something left
    for version in (1, 2):
        r = run(server, seg_spec(version), {"image": b64(frame), **parameters()})
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        preds = out["predictions"]
        assert preds["image"] == infer["image"]
        assert without_ids(preds["predictions"]) == without_ids(infer["predictions"])
        assert set(out["all"]) == {"inference_id", "predictions"} | ({"model_id"} if version == 2 else set())
        assert out["all"].get("model_id", PROPS["model_id"]) == PROPS["model_id"]
    # the older route, a batch of two
    r = httpx.post(f"{server.url}/infer/workflows", json={"specification": seg_spec(2),
                   "inputs": {"image": [b64(frame), b64(frame)], **parameters()}}, timeout=120)
    assert r.status_code == 200 and len(r.json()["outputs"]) == 2


def test_every_model_family_in_one_spec(server, frame):
    """Object detection (a segmentation model, no masks), keypoints and classification blocks,
    each answering what its /infer route answers; a model of the wrong task is refused."""
    steps = [("roboflow_core/roboflow_object_detection_model@v1", "shapes-yolov8seg", "object_detection",
              {"confidence": 0.5, "max_detections": 3}),
             ("roboflow_core/roboflow_keypoint_detection_model@v2", "shapes-yolov8pose", "keypoints_detection",
              {"keypoint_confidence": 0.5}),
             ("roboflow_core/roboflow_classification_model@v2", "yolo11-cls", "classification", {"confidence": 0.1})]
    spec = {"version": "1.0", "inputs": [{"type": "InferenceImage", "name": "img"}],
            "steps": [{"type": t, "name": f"s{i}", "images": "$inputs.img", "model_id": m, **props}
                      for i, (t, m, _, props) in enumerate(steps)],
            "outputs": [{"type": "JsonField", "name": f"o{i}", "selector": f"$steps.s{i}.predictions"}
                        for i in range(len(steps))]}
    r = run(server, spec, {"img": b64(frame)})
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    for i, (_, model_id, route, props) in enumerate(steps):
        infer = httpx.post(f"{server.url}/infer/{route}", json={"model_id": model_id, "image": b64(frame), **props},
                           timeout=120).json()
        got = out[f"o{i}"]
        if route == "classification":
            assert got["top"] == infer["top"] and got["predictions"] == infer["predictions"]
        else:
            assert without_ids(got["predictions"]) == without_ids(infer["predictions"]) and infer["predictions"], route
    assert all("points" not in p for p in out["o0"]["predictions"]) and len(out["o0"]["predictions"]) <= 3
    assert all("keypoints" in p for p in out["o1"]["predictions"])
    wrong = seg_spec(2)
    r = run(server, wrong, {"image": b64(frame), **parameters(), "model_id": "shapes-yolov8pose"})
    assert r.status_code == 400 and "shapes-yolov8pose is a pose model" in r.json()["message"]


def test_bad_workflow_requests_are_422(server, frame):
    cases = [(seg_spec(2, type="roboflow_core/sam3@v1"), parameters(), "roboflow_core/sam3@v1"),
             (seg_spec(2, iou_threshold="$inputs.nope"), parameters(), "$inputs.nope"),
             (seg_spec(2, bound=BOUND + ("max_candidates",)), {**parameters(), "max_candidates": 0}, "max_candidates"),
             (seg_spec(2), {**parameters(), "mask_decode_mode": "perfect"}, "mask_decode_mode")]
    for spec, params, named in cases:
        r = run(server, spec, {"image": b64(frame), **params})
        assert r.status_code == 422 and named in r.json()["message"], r.text
    tracked = seg_spec(2)
    tracked["steps"].append({"type": "roboflow_core/byte_tracker@v2", "name": "t", "image": "$inputs.image",
                             "detections": "$steps.seg.predictions"})
    r = run(server, tracked, {"image": b64(frame), **parameters()})
    assert r.status_code == 422 and "/inference_pipelines" in r.json()["message"]
    assert run(server, seg_spec(2), parameters()).json()["message"] == "workflow: image input image is not given"


@pytest.mark.skipif(not SDK_PYTHON.exists(), reason="no .venv-rfsdk: make rfsdk-venv (make test makes it)")
def test_inference_sdk_runs_workflows_unchanged(server, frame, tmp_path):
    path, specs = tmp_path / "frame.png", tmp_path / "specs.json"
    assert cv2.imwrite(str(path), frame)
    specs.write_text(json.dumps({"v1": {"specification": seg_spec(1), "parameters": parameters()},
                                 "v2": {"specification": seg_spec(2), "parameters": parameters()},
                                 "unknown": {"specification": seg_spec(2, type="x/y@v9"), "parameters": parameters()}}))
    env = dict(os.environ, TLDEXTRACT_CACHE=str(tmp_path / "tldextract"), PYTHONPATH="", PYTHONWARNINGS="ignore")
    done = subprocess.run([str(SDK_PYTHON), str(REPO / "tests" / "rfsdk_workflows.py"), server.url, str(path), str(specs)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    infer = httpx.post(f"{server.url}/infer/instance_segmentation",
                       json={**infer_body(), "image": b64(frame)}, timeout=120).json()
    for version in ("v1", "v2"):
        (answer,) = out[version]
        assert without_ids(answer["predictions"]["predictions"]) == without_ids(infer["predictions"]), version
    assert out["v2"][0]["all"]["model_id"] == PROPS["model_id"]
    assert out["unknown"]["error"] == 422 and "x/y@v9" in out["unknown"]["message"]
