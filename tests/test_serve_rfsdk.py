"""Roboflow's own ``inference-sdk`` client, unchanged, against a real ``vidpipe serve``:
``infer`` on a path, a numpy array and a list, ``load_model``, ``list_loaded_models``,
``unload_model``, ``get_server_info``. The SDK runs in its own virtualenv (``make rfsdk-venv``,
made by ``make test``): its pins (numpy<2.4, pillow<13, supervision<0.31) conflict with ours."""

from __future__ import annotations

import json
import os
import subprocess

import cv2
import httpx
import pytest

from pipeline.wire.formats import roboflow_predictions
from tests.serve_process import REPO, ServeProcess
from tests.test_serve import assert_same, without_ids

SDK_PYTHON = REPO / ".venv-rfsdk" / "bin" / "python"
pytestmark = pytest.mark.skipif(not SDK_PYTHON.exists(), reason="no .venv-rfsdk: make rfsdk-venv (make test makes it)")


def run_sdk(tmp_path, url: str, image, *extra: str) -> dict:
    path = tmp_path / "frame.png"
    assert cv2.imwrite(str(path), image)
    # tldextract (an SDK dependency) never fetches its suffix list here: the SDK passes suffix_list_urls=() and
    # only for URL inputs; its cache goes to the test's folder; a hang would end at the timeout, not block CI.
    env = dict(os.environ, TLDEXTRACT_CACHE=str(tmp_path / "tldextract"), PYTHONPATH="", PYTHONWARNINGS="ignore")
    r = subprocess.run([str(SDK_PYTHON), str(REPO / "tests" / "rfsdk_check.py"), url, str(path), *extra],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_inference_sdk_runs_unchanged(tmp_path, small_clip, model):
    cap = cv2.VideoCapture(str(small_clip))
    ok, frame = cap.read()
    cap.release()
    assert ok
    with ServeProcess(tmp_path, {"backend": {"intra_op_threads": 1}}) as server:
        out = run_sdk(tmp_path, server.url, frame)
        info = httpx.get(f"{server.url}/info").json()
    assert out["info"] == info
    assert [(m["model_id"], m["task_type"], m["input_height"], m["input_width"]) for m in out["load"]["models"]] == [
        ("shapes-yolov8seg", "instance-segmentation", 640, 640)]
    assert out["listed"] == out["load"]
    local = roboflow_predictions(model.infer([frame])[0], "polygon")
    assert local
    assert out["path"]["image"] == {"width": frame.shape[1], "height": frame.shape[0]}
    assert_same(without_ids(out["path"]["predictions"]), without_ids(local))
    # the SDK sends arrays as JPEG (cv2.imencode's defaults): compare with the same JPEG inferred here
    jpeg = cv2.imdecode(cv2.imencode(".jpg", frame)[1], cv2.IMREAD_COLOR)
    local_jpeg = roboflow_predictions(model.infer([jpeg])[0], "polygon")
    assert_same(without_ids(out["array"]["predictions"]), without_ids(local_jpeg))
    assert isinstance(out["list"], list) and len(out["list"]) == 2
    assert_same(without_ids(out["list"][0]["predictions"]), without_ids(local))
    assert out["unload"] == {"models": []}


def test_inference_sdk_with_an_api_key(tmp_path, small_clip):
    """With a key on the server, the SDK's header transport ('both': header and legacy fields) does everything."""
    cap = cv2.VideoCapture(str(small_clip))
    ok, frame = cap.read()
    cap.release()
    with ServeProcess(tmp_path, {"api_key": "sdk-key", "backend": {"intra_op_threads": 1}}) as server:
        out = run_sdk(tmp_path, server.url, frame, "sdk-key", "both")
        refused = httpx.get(f"{server.url}/model/registry")
    assert out["path"]["predictions"] and out["unload"] == {"models": []}
    assert refused.status_code == 401
