"""vidpipe's client says what Roboflow's own ``inference-sdk`` says on the wire, so it works
against Roboflow's inference server as it does against ``vidpipe serve``: both run the same
calls against a recording HTTP server here, and each request (method, path, query, API key
header, JSON body, images) must match (the SDK's virtualenv: ``make rfsdk-venv``, made by
``make test``). And, as the SDK does, a busy server (503) is tried again."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import pytest

from pipeline.client import HTTPCallErrorError, InferenceConfiguration, InferenceHTTPClient
from tests.serve_process import REPO

SDK_PYTHON = REPO / ".venv-rfsdk" / "bin" / "python"
MODEL = "shapes-yolov8seg"
DESCRIPTION = {"model_id": MODEL, "task_type": "instance-segmentation", "batch_size": 8, "input_height": 640, "input_width": 640}
#: Body fields one side sends and the other leaves to the server's default: the SDK's
#: active-learning switch and reduced-resolution masks (both off; vidpipe has neither), and
#: the key vidpipe's client also puts in /model/remove and /model/clear bodies (the SDK
#: sends it there only in the header, so a legacy-transport SDK cannot unload from a keyed server).
MAY_DIFFER = {"disable_active_learning", "allow_reduced_mask_resolution", "api_key"}


class Recorder(BaseHTTPRequestHandler):
    """Answers like an inference server and keeps every request."""

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _record(self) -> dict[str, Any]:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        entry = {"method": self.command, "path": url.path, "query": parse_qs(url.query),
                 "auth": self.headers.get("Authorization"), "body": json.loads(raw) if raw else None}
        self.server.requests.append(entry)  # type: ignore[attr-defined]
        return entry

    def _answer(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        entry = self._record()
        self._answer({"name": "recorder", "version": "1", "uuid": "u"} if entry["path"] == "/info" else {"models": [DESCRIPTION]})

    def do_POST(self) -> None:  # noqa: N802
        entry = self._record()
        if not entry["path"].startswith("/infer/"):
            self._answer({"models": [] if entry["path"] in ("/model/remove", "/model/clear") else [DESCRIPTION]})
            return
        if self.server.busy > 0:  # type: ignore[attr-defined]
            self.server.busy -= 1  # type: ignore[attr-defined]
            self._answer({"message": "overloaded: the queue of model x is full"}, 503)
            return
        images = entry["body"]["image"]
        one = {"image": {"width": 64, "height": 48}, "predictions": []}
        self._answer([one] * len(images) if isinstance(images, list) else one)


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []  # type: ignore[attr-defined]
    server.busy = 0  # type: ignore[attr-defined]  # answer this many inference requests 503
    thread = threading.Thread(target=server.serve_forever, name="wire-recorder")
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def vidpipe_calls(url: str, path: str) -> None:
    """What client_wire_sdk.py does, with vidpipe's client."""
    client = InferenceHTTPClient(url, api_key="KEY")
    client.configure(InferenceConfiguration(confidence_threshold=0.5, iou_threshold=0.4, class_filter=["circle"],
                                            max_detections=10, mask_decode_mode="fast", response_mask_format="rle",
                                            max_batch_size=2, api_key_transport="both"))
    with client:
        client.get_server_info()
        client.load_model(MODEL)
        client.list_loaded_models()
        client.infer(path, model_id=MODEL)
        client.infer(cv2.imread(path), model_id=MODEL)
        client.infer([path, path, path], model_id=MODEL)
        client.unload_model(MODEL)
        client.unload_all_models()


def _image_of(ref: dict) -> np.ndarray:
    assert ref["type"] == "base64"
    return cv2.imdecode(np.frombuffer(base64.b64decode(ref["value"]), np.uint8), cv2.IMREAD_COLOR)


def assert_same_request(ours: dict, theirs: dict) -> None:
    where = f"{theirs['method']} {theirs['path']}"
    assert (ours["method"], ours["path"], ours["query"], ours["auth"]) == \
        (theirs["method"], theirs["path"], theirs["query"], theirs["auth"]), where
    a, b = ours["body"] or {}, theirs["body"] or {}
    assert set(a) ^ set(b) <= MAY_DIFFER, f"{where}: fields {sorted(set(a) ^ set(b))}"
    for key in set(a) & set(b) - {"image"}:
        assert a[key] == b[key], f"{where}: {key}: {a[key]!r} != {b[key]!r}"
    if "image" in b:
        mine, sdk = (x if isinstance(x, list) else [x] for x in (a["image"], b["image"]))
        assert isinstance(a["image"], list) == isinstance(b["image"], list) and len(mine) == len(sdk), where
        for m, s in zip(mine, sdk):  # paths go as their bytes; arrays as JPEG, each side's OpenCV
            diff = np.abs(_image_of(m).astype(int) - _image_of(s).astype(int))
            assert diff.mean() < 1.0, f"{where}: images differ"


@pytest.mark.skipif(not SDK_PYTHON.exists(), reason="no .venv-rfsdk: make rfsdk-venv (make test makes it)")
def test_requests_match_inference_sdk(recorder, small_clip, tmp_path):
    cap = cv2.VideoCapture(str(small_clip))
    frame = cap.read()[1]
    cap.release()
    path = tmp_path / "frame.png"
    assert cv2.imwrite(str(path), frame)
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    env = dict(os.environ, TLDEXTRACT_CACHE=str(tmp_path / "tldextract"), PYTHONPATH="", PYTHONWARNINGS="ignore")
    proc = subprocess.run([str(SDK_PYTHON), str(REPO / "tests" / "client_wire_sdk.py"), url, str(path)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sdk = list(recorder.requests)
    recorder.requests.clear()
    vidpipe_calls(url, str(path))
    ours = list(recorder.requests)
    # The SDK asks the registry before every inference; vidpipe's client keeps the answer.
    def registry_get(r: dict) -> bool:
        return (r["method"], r["path"]) == ("GET", "/model/registry")

    sdk_gets = [r for r in sdk if registry_get(r)]
    assert all(r["query"] == sdk_gets[0]["query"] and r["auth"] == sdk_gets[0]["auth"] for r in sdk_gets)
    ours_gets = [r for r in ours if registry_get(r)]
    assert len(ours_gets) == 2  # list_loaded_models, and the first infer's model description
    assert_same_request(ours_gets[0], sdk_gets[0])
    sdk_rest = [r for r in sdk if not registry_get(r)]
    ours_rest = [r for r in ours if not registry_get(r)]
    assert [r["path"] for r in ours_rest] == [r["path"] for r in sdk_rest]
    assert sum(r["path"] == "/infer/instance_segmentation" for r in ours_rest) == 4  # 1 + 1 + [2, 1]
    for mine, theirs in zip(ours_rest, sdk_rest):
        assert_same_request(mine, theirs)


def test_a_busy_server_is_tried_again(recorder):
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    image = np.zeros((48, 64, 3), np.uint8)
    infers = lambda: [r for r in recorder.requests if r["path"].startswith("/infer/")]  # noqa: E731
    with InferenceHTTPClient(url).configure(InferenceConfiguration(retry_interval_s=0)) as client:
        recorder.busy = 2  # two 503s, then an answer: within the default 2 retries
        assert client.infer(image, model_id=MODEL)["image"] == {"width": 64, "height": 48}
        assert len(infers()) == 3
        recorder.busy = 2
        assert asyncio.run(client.infer_async(image, model_id=MODEL))["predictions"] == []
        assert len(infers()) == 6
        recorder.busy = 3  # one more than the retries: the server's status and message
        with pytest.raises(HTTPCallErrorError) as err:
            client.infer(image, model_id=MODEL)
        assert err.value.status_code == 503 and "queue of model x is full" in err.value.api_message and len(infers()) == 9
        client.configure(InferenceConfiguration(max_retries=0))
        recorder.busy = 1
        with pytest.raises(HTTPCallErrorError):
            client.infer(image, model_id=MODEL)
        assert len(infers()) == 10
