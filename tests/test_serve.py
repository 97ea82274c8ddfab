"""`vidpipe serve` against a real server process (uvicorn on 127.0.0.1, started and stopped
here): every route, answers equal to in-process inference, the Roboflow layouts, and each
bad input with its status and ``{"message": ...}``. The key and limits: test_serve_limits.py."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from pipeline.app.serve.config import ServeConfig
from pipeline.infer.config import PostprocessOptions
from pipeline.infer.tasks import decoder_for
from pipeline.wire.formats import roboflow_predictions, vidpipe_detections
from tests.serve_process import REPO, ServeProcess

FIXTURES = REPO / "tests" / "fixtures" / "ultralytics"
CONFIG = {"models_dir": str(FIXTURES), "aliases": {"shapes/1": "shapes-yolov8seg"}, "preload": ["shapes-yolov8seg"],
          "batching": {"max_batch_size": 8, "max_wait_ms": 5}, "limits": {"queue_size": 32},
          "backend": {"intra_op_threads": 1}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServeProcess(tmp_path_factory.mktemp("serve"), CONFIG).start()
    yield proc
    rc = proc.stop()
    assert rc == 143, proc.log  # SIGTERM: a graceful stop, then the CLI's 128 + signal
    assert proc.log.rstrip().endswith("vidpipe serve: stopped (every model unloaded)"), proc.log
    assert "Traceback" not in proc.log, proc.log


@pytest.fixture(scope="module")
def frames(small_clip) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(small_clip))
    out = []
    while len(out) < 4:
        ok, frame = cap.read()
        assert ok
        out.append(frame)
    cap.release()
    return out


def b64(image: np.ndarray, ext: str = ".png") -> dict:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return {"type": "base64", "value": base64.b64encode(data.tobytes()).decode()}


def post(server, route: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(f"{server.url}{route}", json=body, timeout=120, **kw)


def without_ids(predictions: list[dict]) -> list[dict]:
    return [{k: v for k, v in p.items() if k != "detection_id"} for p in predictions]


def assert_same(served: list[dict], local: list[dict]) -> None:
    """Equal up to float noise between batch sizes (values are rounded to 0.01 px, 1e-4)."""
    assert len(served) == len(local)
    for a, b in zip(served, local):
        assert a["class"] == b["class"] and a.get("class_id") == b.get("class_id")
        for key in ("x", "y", "width", "height", "confidence"):
            assert a[key] == pytest.approx(b[key], abs=0.02)
        if "points" in b:
            assert len(a["points"]) == pytest.approx(len(b["points"]), abs=2)
        if "rle" in b:
            assert a["rle"]["size"] == b["rle"]["size"]


def test_info_health_ready_and_metrics(server):
    info = httpx.get(f"{server.url}/info").json()
    assert info["name"] == "vidpipe inference server" and info["version"] and len(info["uuid"]) == 36
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready", "models": ["shapes-yolov8seg"]}
    text = httpx.get(f"{server.url}/metrics").text
    assert 'vidpipe_serve_requests_total{route="/info",status="200"} 1.0' in text
    assert "vidpipe_serve_queue_depth" in text


def test_instance_segmentation_equals_in_process(server, frames, model):
    r = post(server, "/infer/instance_segmentation", {"model_id": "shapes-yolov8seg", "image": [b64(f) for f in frames]})
    assert r.status_code == 200, r.text
    answers = r.json()
    assert isinstance(answers, list) and len(answers) == len(frames)
    local = model.infer(frames)
    assert sum(len(d) for d in local) > 0
    # Where the time went: each part named, the model's own time within the inference's.
    timing = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
    assert set(timing) == {"decode", "infer", "model", "answer"}, timing
    assert 0 < float(timing["model"]) <= float(timing["infer"]) and float(timing["decode"]) > 0, timing
    for answer, dets, frame in zip(answers, local, frames):
        assert answer["image"] == {"width": frame.shape[1], "height": frame.shape[0]}
        assert answer["visualization"] is None and answer["time"] > 0 and answer["inference_id"]
        assert_same(without_ids(answer["predictions"]), without_ids(roboflow_predictions(dets, "polygon")))
    one = post(server, "/infer/instance_segmentation",
               {"model_id": "shapes/1", "image": b64(frames[0]), "response_mask_format": "rle"}).json()
    assert isinstance(one, dict)  # one image sent: one object back, as Roboflow answers
    assert_same(without_ids(one["predictions"]), without_ids(roboflow_predictions(local[0], "rle")))
    vid = post(server, "/infer/instance_segmentation", {"model_id": "shapes-yolov8seg", "image": b64(frames[1]),
                                                        "format": "vidpipe"}).json()
    expected = vidpipe_detections(local[1], "rle")
    assert [d["rle"] for d in vid["detections"]] == [d["rle"] for d in expected]
    assert [d["category"] for d in vid["detections"]] == [d["category"] for d in expected]


def test_answers_equal_a_pipeline_on_the_same_images(server, frames, tmp_path):
    """The same PNG files through a Pipeline (image folder source) and through the server."""
    from pipeline.app.pipeline import Pipeline

    folder = tmp_path / "images"
    folder.mkdir()
    for i, f in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{i}.png"), f)
    config = {"streams": [{"id": "imgs", "source": {"type": "images", "path": str(folder)}}],
              "model": {"path": "shapes-yolov8seg", "intra_op_threads": 1}}
    with Pipeline.from_config(config) as pipeline:
        results = sorted(pipeline, key=lambda r: r.frame_index)
    assert len(results) == len(frames)
    images = [{"type": "base64", "value": base64.b64encode((folder / f"{i}.png").read_bytes()).decode()}
              for i in range(len(frames))]
    answers = post(server, "/infer/instance_segmentation", {"model_id": "shapes-yolov8seg", "image": images}).json()
    for answer, result in zip(answers, results):
        assert answer["image"] == {"width": result.width, "height": result.height}
        assert_same(without_ids(answer["predictions"]), without_ids(roboflow_predictions(result.detections, "polygon")))


def test_options_are_per_request_within_one_batch(server, frames, model):
    """Concurrent requests with different options share batches; each is decoded with its own."""
    strict = {"confidence": 0.8, "class_filter": ["circle"], "max_detections": 2}

    async def both():
        async with httpx.AsyncClient(timeout=120) as client:
            body = {"model_id": "shapes-yolov8seg", "image": b64(frames[2])}
            return await asyncio.gather(*(client.post(f"{server.url}/infer/object_detection", json={**body, **opts})
                                          for opts in [{}, strict] * 4))

    answers = [r.json() for r in asyncio.run(both())]
    blob, geoms = model.preprocess([frames[2]])
    outputs = model.run(blob)
    for opts, answer in zip([{}, strict] * 4, answers):
        decoder = decoder_for(model.layout, PostprocessOptions(**opts), model.class_names, model.kernels)
        local = roboflow_predictions(decoder.decode(outputs, 0, geoms[0]), "none")
        assert_same(without_ids(answer["predictions"]), without_ids(local))
        assert all("points" not in p for p in answer["predictions"])  # object detection: no masks
    assert {p["class"] for p in answers[1]["predictions"]} <= {"circle"} and len(answers[1]["predictions"]) <= 2
    assert len(answers[0]["predictions"]) > len(answers[1]["predictions"])


def test_visualization_is_the_annotated_image(server, frames):
    answer = post(server, "/infer/instance_segmentation", {"model_id": "shapes-yolov8seg", "image": b64(frames[0]),
                                                           "visualize_predictions": True}).json()
    image = cv2.imdecode(np.frombuffer(base64.b64decode(answer["visualization"]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == frames[0].shape
    assert np.abs(image.astype(int) - frames[0]).mean() > 1  # boxes and masks were drawn


def test_keypoints_and_classification_routes(server, frames):
    pose = post(server, "/infer/keypoints_detection", {"model_id": "shapes-yolov8pose", "image": b64(frames[0])}).json()
    assert pose["predictions"] and all(len(p["keypoints"]) == 5 for p in pose["predictions"])
    assert set(pose["predictions"][0]["keypoints"][0]) == {"x", "y", "confidence", "class_id", "class"}
    cls = post(server, "/infer/classification", {"model_id": "yolo11-cls", "image": b64(frames[0]), "confidence": 0.0}).json()
    assert cls["top"] and cls["predictions"][0]["class"] == cls["top"] and "confidence" in cls
    det = post(server, "/infer/object_detection", {"model_id": "yolo11-det", "image": b64(frames[0]), "confidence": 0.0})
    assert det.status_code == 200 and "predictions" in det.json()
    wrong = post(server, "/infer/classification", {"model_id": "shapes-yolov8seg", "image": b64(frames[0])})
    assert wrong.status_code == 400 and "is a segment model" in wrong.json()["message"]


def test_model_registry_add_remove_clear(server):
    models = post(server, "/model/add", {"model_id": "yolo11-det"}).json()["models"]
    by_id = {m["model_id"]: m for m in models}
    assert by_id["yolo11-det"]["task_type"] == "object-detection"
    assert by_id["shapes-yolov8seg"] == {**by_id["shapes-yolov8seg"], "task_type": "instance-segmentation",
                                         "input_height": 640, "input_width": 640}
    assert {m["model_id"] for m in httpx.get(f"{server.url}/model/registry").json()["models"]} >= {"yolo11-det"}
    after = post(server, "/model/remove", {"model_id": "yolo11-det"}).json()["models"]
    assert "yolo11-det" not in {m["model_id"] for m in after}
    again = post(server, "/model/remove", {"model_id": "yolo11-det"})
    assert again.status_code == 404 and "not loaded" in again.json()["message"]
    assert post(server, "/model/clear", {}).json() == {"models": []}
    assert httpx.get(f"{server.url}/model/registry").json() == {"models": []}
    assert post(server, "/model/add", {"model_id": "shapes-yolov8seg"}).status_code == 200


def tall_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a token IDAT: cheap to make, and any
    attempt to decode it would fail as corrupt (400), not as too large (413)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"image": {"type": "base64", "value": base64.b64encode(b"\xff\xd8\xff\xe0 not really a jpeg").decode()}}, 400, "not an image"),
    ({"image": {"type": "base64", "value": base64.b64encode(tall_png(30000, 30000)).decode()}}, 413, "900000000 pixels"),
    ({"image": {"type": "base64", "value": base64.b64encode(tall_png(9000, 5000)).decode()}}, 413, "9000x5000"),
    ({"image": {"type": "base64", "value": "%%% not base64"}}, 400, "not valid base64"),
    ({"image": {"type": "url", "value": "http://127.0.0.1:9/x.jpg"}}, 400, "URL images are disabled"),
    ({"image": {"type": "numpy", "value": "gASV"}}, 400, "pickled"),
    ({"model_id": "no-such-model"}, 404, "no model 'no-such-model'"),
    ({"model_id": "../../etc/passwd"}, 400, "ids are never paths"),
    ({"model_id": "/etc/passwd"}, 400, "ids are never paths"),
    ({"confidence": 2}, 422, "confidence"),
    ({"class_filter": ["unicorn"]}, 422, "unicorn"),
    ({"image": None}, 422, "image"),
    ({"image": []}, 422, "empty list"),
])
def test_bad_input_is_a_clear_status(server, frames, body, status, words):
    full = {"model_id": "shapes-yolov8seg", "image": b64(frames[0]), **body}
    r = post(server, "/infer/instance_segmentation", full)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]


def test_bad_json_unknown_route_and_path_model_add(server):
    r = httpx.post(f"{server.url}/infer/instance_segmentation", content=b"{not json", timeout=30)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = post(server, "/infer/semantic_nonsense", {"model_id": "x"})
    assert r.status_code == 404 and "/infer/instance_segmentation" in r.json()["message"]
    r = post(server, "/model/add", {"model_id": "../../etc/passwd"})
    assert r.status_code == 400 and "ids are never paths" in r.json()["message"]
    r = httpx.get(f"{server.url}/nowhere")
    assert r.status_code == 404 and r.json()["message"]


def test_overload_answers_503_and_the_server_keeps_serving(server, frames):
    """200 concurrent one-image requests against a queue of 32: some 503 at once, the rest
    answered; afterwards the server serves as before."""
    body = {"model_id": "shapes-yolov8seg", "image": b64(frames[3], ".jpg")}

    async def flood():
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=300, limits=limits) as client:
            return await asyncio.gather(*(client.post(f"{server.url}/infer/instance_segmentation", json=body)
                                          for _ in range(200)))

    responses = asyncio.run(flood())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) > 0 and statuses.count(200) >= 32
    assert all("overloaded" in r.json()["message"] for r in responses if r.status_code == 503)
    assert all(r.json()["predictions"] for r in responses if r.status_code == 200)
    assert post(server, "/infer/instance_segmentation", body).status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    line = f'vidpipe_serve_requests_total{{route="/infer/instance_segmentation",status="503"}} {float(statuses.count(503))}'
    assert line in metrics
    assert 'vidpipe_serve_queue_depth{model="shapes-yolov8seg"} 0.0' in metrics


def test_public_bind_without_key_is_refused(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--host", "0.0.0.0", "--port", "0"], capture_output=True,
                       text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "vidpipe: error: serve: binding 0.0.0.0 (not loopback) needs an API key: --api-key KEY (or api_key in the config), "
        "or bind 127.0.0.1"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"limits": {"queue_size": 0}}))
    r = subprocess.run([sys.executable, "-m", "pipeline", "serve", str(bad)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2 and "limits.queue_size" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_batches_form_under_concurrency(server, frames):
    """16 clients sending one image each: the model runs batches of more than one."""
    body = {"model_id": "shapes-yolov8seg", "image": b64(frames[1], ".jpg")}

    async def clients():
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(client.post(f"{server.url}/infer/object_detection", json=body) for _ in range(16)))

    before = _batch_counts(httpx.get(f"{server.url}/metrics").text)
    assert all(r.status_code == 200 for r in asyncio.run(clients()))
    after = _batch_counts(httpx.get(f"{server.url}/metrics").text)
    images, batches = after[0] - before[0], after[1] - before[1]
    assert images == 16 and batches < 16


def _batch_counts(metrics: str) -> tuple[float, float]:
    """(images, batches) of the seg model so far, from /metrics."""
    values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#"))
    return (float(values['vidpipe_serve_batch_size_sum{model="shapes-yolov8seg"}']),
            float(values['vidpipe_serve_batch_size_count{model="shapes-yolov8seg"}']))


def test_the_readme_curl_example_and_the_example_config(server, frames, tmp_path):
    import re

    from pipeline.app.serve.config import load_serve_config

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Serve over HTTP"):]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if "curl " in b)
    curl = "\n".join(line for line in block.splitlines() if not line.startswith("#"))  # the printf | curl command
    assert cv2.imwrite(str(tmp_path / "frame.jpg"), frames[0])
    r = subprocess.run(["bash", "-c", curl.replace("http://127.0.0.1:9001", server.url)], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["predictions"] and all(p["confidence"] >= 0.5 for p in answer["predictions"])
    config = load_serve_config(REPO / "configs" / "serve" / "serve.yaml")
    assert config.aliases["shapes/1"] == "shapes-yolov8seg" and config.limits.queue_size == 32
    assert ServeConfig.model_validate(CONFIG).models_dir == Path(FIXTURES)


def test_startup_compiles_the_visualisation_kernel_before_ready(monkeypatch):
    """visualize_predictions blends masks with a Numba kernel: made ready at start, so no request compiles it."""
    import warnings

    from pipeline.app.serve.app import create_app
    from sinks import blend

    calls: list[bool] = []
    monkeypatch.setattr(blend, "warm_up", lambda: calls.append(True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's TestClient on httpx: a deprecation notice
        from starlette.testclient import TestClient

        with TestClient(create_app(ServeConfig())) as client:
            assert calls == [True] and client.get("/readyz").status_code == 200
