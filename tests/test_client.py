"""vidpipe's HTTP client against a real ``vidpipe serve`` (a subprocess on 127.0.0.1):
every registry route, every kind of image reference, lists in batched and parallel
requests, the configuration and its context managers, client-side downsizing, errors
carrying the server's status and message, and answers rebuilt as Result/Detections equal
to in-process inference on the same images. Async twins and streams: test_client_async.py."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import re
import socket
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import cv2
import httpx
import numpy as np
import pytest

from pipeline.client import (
    HTTPCallErrorError,
    HTTPServerConnectionError,
    InferenceConfiguration,
    InferenceHTTPClient,
    InvalidInputFormatError,
    ModelNotSelectedError,
    to_detections,
    to_result,
    to_supervision,
)
from tests.serve_process import REPO, ServeProcess

MODEL = "shapes-yolov8seg"
FIXTURES = REPO / "tests" / "fixtures" / "ultralytics"  # Ultralytics exports of each task, served from --models
EXACT = InferenceConfiguration(response_mask_format="rle", image_encoding="png")  # lossless both ways


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stopped_cleanly(proc: ServeProcess) -> None:
    rc = proc.stop()
    assert rc == 143 and "Traceback" not in proc.log, proc.log  # SIGTERM: graceful stop, then 128 + signal


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServeProcess(tmp_path_factory.mktemp("serve"), {"models_dir": str(FIXTURES)}).start()
    yield proc.url
    stopped_cleanly(proc)


@pytest.fixture
def client(server):
    with InferenceHTTPClient(server) as c:
        yield c


@pytest.fixture(scope="module")
def frames(small_clip) -> list[np.ndarray]:
    """Three decoded frames of the synthetic clip (objects in view)."""
    cap = cv2.VideoCapture(str(small_clip))
    out = []
    for i in range(12):
        ok, frame = cap.read()
        assert ok
        if i in (0, 5, 11):
            out.append(frame)
    cap.release()
    return out


def assert_same(answer: dict, expected) -> None:
    """The answer's detections are the in-process ones: boxes to the wire's 0.01 px, scores
    to its 4 decimals, classes and full-frame masks exactly."""
    got = to_detections(answer)
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose(got.xyxy, expected.xyxy, atol=0.011)
    np.testing.assert_allclose(got.confidence, expected.confidence, atol=1e-4)
    assert got.class_id.tolist() == expected.class_id.tolist()
    assert got.category == expected.category
    assert np.array_equal(got.full_masks(), expected.full_masks())


def _metric(url: str, name: str, labels: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf"^{name}\{{{labels}\}} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_registry_routes_and_server_info(client):
    info = client.get_server_info()
    assert info.name == "vidpipe inference server" and info.version and info.uuid
    assert client.unload_all_models().models == []
    assert client.list_loaded_models().models == []
    loaded = client.load_model(MODEL, set_as_default=True)
    assert [m.model_id for m in loaded.models] == [MODEL] and client.selected_model == MODEL
    description = client.get_model_description(MODEL)
    assert (description.task_type, description.input_height, description.input_width) == ("instance-segmentation", 640, 640)
    assert [m.model_id for m in client.unload_model(MODEL).models] == []
    assert client.selected_model is None  # unloading the selected model unselects it
    with pytest.raises(HTTPCallErrorError) as err:
        client.unload_model(MODEL)
    assert err.value.status_code == 404 and MODEL in err.value.api_message
    # get_model_description loads a model the server does not have, unless told not to
    assert client.get_model_description(MODEL).model_id == MODEL
    assert [m.model_id for m in client.list_loaded_models().models] == [MODEL]


@pytest.fixture
def file_server(tmp_path):
    """An HTTP server of ``tmp_path`` on 127.0.0.1 (images given as URLs); its base URL."""
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=httpd.serve_forever, name="file-server")
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def test_every_kind_of_image_equals_in_process(client, model, frames, tmp_path, file_server):
    from PIL import Image

    frame = frames[1]
    expected = model.infer([frame])[0]
    path = tmp_path / "frame.png"
    assert cv2.imwrite(str(path), frame)
    data = path.read_bytes()
    pil = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    client.configure(EXACT).select_model(MODEL)
    url = f"{file_server}/frame.png"  # fetched by the client, as inference-sdk does: the server needs no URL access
    for reference in (str(path), url, base64.b64encode(data).decode(), data, frame, pil):
        answer = client.infer(reference)
        assert answer["image"] == {"width": 640, "height": 360}
        assert_same(answer, expected)
    assert_same(asyncio.run(client.infer_async(url)), expected)
    with pytest.raises(HTTPCallErrorError) as err:
        client.infer(f"{file_server}/missing.png")
    assert err.value.status_code == 404 and "missing.png" in str(err.value)
    result = to_result(answer, stream_id="cam0", frame_index=7, model=MODEL, image=frame)
    assert (result.stream_id, result.frame_index, result.width, result.height, result.model) == ("cam0", 7, 640, 360, MODEL)
    assert result.timings["server"] > 0 and result.image is frame
    sv_dets = to_supervision(answer)
    assert np.array_equal(sv_dets.mask, expected.to_supervision().mask)
    assert list(sv_dets.data["class_name"]) == list(expected.category)


@pytest.mark.parametrize("model_id, task, confidence", [
    ("shapes-yolov8pose", "keypoint-detection", 0.4), ("yolo11-det", "object-detection", 0.005),
    ("yolo11-cls", "classification", 0.0)])
def test_every_task_route_answers_as_in_process(client, frames, model_id, task, confidence):
    from pipeline.infer.config import PostprocessOptions
    from pipeline.infer.model import Model

    frame = frames[1]
    assert client.get_model_description(model_id).task_type == task
    path = model_id if model_id.startswith("shapes") else str(FIXTURES / f"{model_id}.onnx")
    local = Model.load(path, postprocess=PostprocessOptions(confidence=confidence)).infer([frame])[0]
    with client.use_configuration(dataclasses.replace(EXACT, confidence_threshold=confidence)):
        got = to_detections(client.infer(frame, model_id=model_id))
    if task == "classification":
        assert got.classification.class_id[0] == local.classification.class_id[0]
        assert got.classification.confidence[0] == pytest.approx(local.classification.confidence[0], abs=1e-4)
        return
    assert len(got) == len(local) > 0 and got.masks is None
    np.testing.assert_allclose(got.xyxy, local.xyxy, atol=0.011)
    np.testing.assert_allclose(got.confidence, local.confidence, atol=1e-4)
    assert got.class_id.tolist() == local.class_id.tolist() and got.category == local.category
    if task == "keypoint-detection":
        np.testing.assert_allclose(got.keypoints, local.keypoints, atol=0.011)
        assert got.keypoint_names == local.keypoint_names


def test_lists_run_as_batched_parallel_requests_in_order(client, server, frames):
    sizes = [(360, 640), (240, 320), (300, 400), (200, 500), (180, 260)]
    images = [cv2.resize(frames[i % 3], (w, h)) for i, (h, w) in enumerate(sizes)]
    before = _metric(server, "vidpipe_serve_requests_total", r'route="/infer/instance_segmentation",status="200"')
    cfg = InferenceConfiguration(max_batch_size=2, max_concurrent_requests=3)
    with client.use_configuration(cfg):
        answers = client.infer(images, model_id=MODEL)
    after = _metric(server, "vidpipe_serve_requests_total", r'route="/infer/instance_segmentation",status="200"')
    assert [(a["image"]["height"], a["image"]["width"]) for a in answers] == sizes  # in order
    assert after - before == 3  # 5 images, 2 per request
    assert all(a["predictions"] for a in answers)
    assert client.inference_configuration == InferenceConfiguration()  # restored after the block
    one = client.infer([images[0]], model_id=MODEL)
    assert isinstance(one, dict)  # a one-image list answers its dict, as inference-sdk does
    with client.use_configuration(cfg):
        assert client.infer([], model_id=MODEL) == []  # nothing to send: no request


def test_configuration_reaches_the_server(client, frames):
    frame = frames[1]
    client.select_model(MODEL)
    everything = client.infer(frame)["predictions"]
    assert {p["class"] for p in everything} > {"circle"}
    with client.use_configuration(InferenceConfiguration(class_filter=["circle"])):
        assert {p["class"] for p in client.infer(frame)["predictions"]} == {"circle"}
    with client.use_configuration(InferenceConfiguration(max_detections=1)):
        assert len(client.infer(frame)["predictions"]) == 1
    with client.use_configuration(InferenceConfiguration(confidence_threshold=1.0)):
        assert client.infer(frame)["predictions"] == []
    assert all("points" in p for p in everything)  # Roboflow's polygons unless rle is asked
    with client.use_configuration(InferenceConfiguration(response_mask_format="rle")):
        assert all("rle" in p for p in client.infer(frame)["predictions"])
    vis = InferenceConfiguration(visualize_predictions=True, output_visualisation_format="numpy")
    with client.use_configuration(vis):
        drawn = client.infer(frame)["visualization"]
    assert isinstance(drawn, np.ndarray) and drawn.shape == frame.shape and not np.array_equal(drawn, frame)
    with client.use_configuration(InferenceConfiguration(visualize_predictions=True, output_visualisation_format="pillow")):
        assert client.infer(frame)["visualization"].size == (640, 360)


def test_client_side_downsizing_scales_answers_back(client, frames):
    big = cv2.resize(frames[1], (1280, 720))
    client.select_model(MODEL)
    full = client.infer(big)
    with client.use_configuration(InferenceConfiguration(client_downsizing_disabled=False)):
        small = client.infer(big)  # sent at 640x360 (the model's input is 640x640)
    assert small["image"] == full["image"] == {"width": 1280, "height": 720}
    # the same objects (in confidence order, two close scores may swap: pair them by place)
    small_objects, full_objects = (sorted(r["predictions"], key=lambda p: (p["class"], p["x"])) for r in (small, full))
    assert [p["class"] for p in small_objects] == [p["class"] for p in full_objects]
    for a, b in zip(small_objects, full_objects):
        assert abs(a["x"] - b["x"]) < 4 and abs(a["width"] - b["width"]) < 6  # same objects, in the caller's pixels
        assert max(pt["x"] for pt in a["points"]) > 640 or a["x"] < 640


def test_errors_carry_the_servers_status_and_message(client, frames):
    with pytest.raises(HTTPCallErrorError) as err:
        client.infer(frames[0], model_id="no-such-model")
    assert err.value.status_code == 404 and "no-such-model" in err.value.api_message
    with pytest.raises(HTTPCallErrorError) as err:
        client.infer(frames[0], model_id="../../etc/passwd")
    assert err.value.status_code == 400 and "never paths" in str(err.value)
    with pytest.raises(HTTPCallErrorError) as err:
        client.infer(b"not an image", model_id=MODEL)
    assert err.value.status_code == 400 and "not an image" in err.value.api_message
    with pytest.raises(ModelNotSelectedError):
        client.infer(frames[0])
    with pytest.raises(InvalidInputFormatError, match="missing.png"):
        client.infer("missing.png", model_id=MODEL)
    with pytest.raises(InvalidInputFormatError, match="unknown type"):
        client.infer(3.5, model_id=MODEL)
    with InferenceHTTPClient(f"http://127.0.0.1:{free_port()}") as nobody, pytest.raises(HTTPServerConnectionError):
        nobody.get_server_info()


def test_api_key_travels_as_each_transport_sends_it(frames, tmp_path):
    proc = ServeProcess(tmp_path, args=("--api-key", "s3cret")).start()
    url = proc.url
    try:
        for transport in ("legacy", "both", "header"):
            cfg = InferenceConfiguration(api_key_transport=transport)
            with InferenceHTTPClient(url, api_key="s3cret").configure(cfg) as c:
                assert c.load_model(MODEL).models[0].model_id == MODEL
                assert c.infer(frames[0], model_id=MODEL)["predictions"]
        with InferenceHTTPClient(url, api_key="wrong") as c, pytest.raises(HTTPCallErrorError) as err:
            c.list_loaded_models()
        assert err.value.status_code in (401, 403) and "wrong" not in str(err.value)
    finally:
        stopped_cleanly(proc)


def test_importing_the_client_loads_no_onnxruntime_or_numba():
    code = ("import sys; from pipeline.client import InferenceHTTPClient; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'onnxruntime', 'numba', 'sources', 'pipeline.infer'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
