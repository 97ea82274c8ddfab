"""`vidpipe serve`'s key and limits against a real server process: the API key in each place
Roboflow clients put it (missing 401, wrong 403), the body limit (declared and chunked), the
pixel and image-count limits, URL images (allow-list, private addresses, no redirects)."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import cv2
import httpx
import numpy as np
import pytest

from pipeline.app.serve.config import UrlConfig
from pipeline.app.serve.errors import ServeError
from pipeline.app.serve.urls import UrlFetcher
from tests.serve_process import ServeProcess

KEY = "k3y-for-tests"
CONFIG = {"api_key": KEY, "backend": {"intra_op_threads": 1},
          "limits": {"max_body_mb": 1, "max_pixels": 500_000, "max_images": 3, "read_timeout_s": 1},
          "urls": {"enabled": True, "allow_hosts": ["localhost", "127.0.0.1", "10.1.2.3"]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServeProcess(tmp_path_factory.mktemp("serve-limits"), CONFIG).start()
    yield proc
    assert proc.stop() == 143, proc.log


def image_ref(h: int = 240, w: int = 320) -> dict:
    image = np.zeros((h, w, 3), np.uint8)
    cv2.circle(image, (w // 2, h // 2), min(h, w) // 4, (0, 200, 255), -1)
    return {"type": "base64", "value": base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()}


def test_open_routes_need_no_key(server):
    assert httpx.get(f"{server.url}/info").status_code == 200
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/readyz").status_code == 200


@pytest.mark.parametrize(("kwargs", "status"), [
    ({}, 401),
    ({"params": {"api_key": "wrong"}}, 403),
    ({"headers": {"Authorization": "Bearer wrong"}}, 403),
    ({"params": {"api_key": KEY}}, 200),
    ({"headers": {"Authorization": f"Bearer {KEY}"}}, 200),
])
def test_key_on_the_registry_and_metrics(server, kwargs, status):
    for route in ("/model/registry", "/metrics"):
        r = httpx.get(f"{server.url}{route}", **kwargs)
        assert r.status_code == status
        if status != 200:
            assert r.json()["message"] in ("the API key is not valid",
                                           "an API key is required: api_key in the query or body, or Authorization: Bearer")


def test_key_in_the_body_as_roboflow_sends_it(server):
    body = {"model_id": "shapes-yolov8seg", "image": image_ref()}
    assert httpx.post(f"{server.url}/infer/object_detection", json=body, timeout=60).status_code == 401
    assert httpx.post(f"{server.url}/infer/object_detection", json={**body, "api_key": "nope"}, timeout=60).status_code == 403
    ok = httpx.post(f"{server.url}/infer/object_detection", json={**body, "api_key": KEY}, timeout=120)
    assert ok.status_code == 200 and "predictions" in ok.json()
    assert httpx.post(f"{server.url}/model/clear", timeout=60).status_code == 401
    assert httpx.post(f"{server.url}/model/clear", params={"api_key": KEY}, timeout=60).json() == {"models": []}


def test_body_over_the_limit_is_413(server):
    big = {"model_id": "shapes-yolov8seg", "image": {"type": "base64", "value": "A" * (1024 * 1024 + 10)}, "api_key": KEY}
    r = httpx.post(f"{server.url}/infer/instance_segmentation", json=big, timeout=60)
    assert r.status_code == 413 and "over the limit of 1048576 bytes" in r.json()["message"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * 100_000

    r = httpx.post(f"{server.url}/infer/instance_segmentation", content=chunks(), params={"api_key": KEY}, timeout=60)
    assert r.status_code == 413 and "over the limit" in r.json()["message"]
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_a_stalled_body_is_408(server):
    """A client that declares 100 bytes and sends 10 is answered 408 (read_timeout_s: 1), not waited for."""
    import json
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=60) as sock:
        sock.sendall(b"POST /infer/object_detection?api_key=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model_id\"")
        reply = b""
        while b"}" not in reply:
            chunk = sock.recv(4096)
            assert chunk, reply
            reply += chunk
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body) == {"message": "request body not received within 1.0 s"}


def test_pixel_and_image_count_limits(server):
    body = {"model_id": "shapes-yolov8seg", "api_key": KEY}
    r = httpx.post(f"{server.url}/infer/instance_segmentation", json={**body, "image": image_ref(720, 1280)}, timeout=60)
    assert r.status_code == 413 and r.json()["message"] == \
        "image of 1280x720 = 921600 pixels is over the limit of 500000 pixels"
    r = httpx.post(f"{server.url}/infer/instance_segmentation", json={**body, "image": [image_ref()] * 4}, timeout=60)
    assert r.status_code == 413 and "4 images in one request, the limit is 3" in r.json()["message"]


@pytest.mark.parametrize(("url", "status", "words"), [
    ("http://127.0.0.1:9/a.png", 403, "loopback/private"),
    ("http://localhost:9/a.png", 403, "loopback/private"),
    ("http://10.1.2.3/a.png", 403, "loopback/private"),
    ("http://example.com/a.png", 403, "not in the server's allow-list"),
    ("file:///etc/passwd", 400, "must be http(s)"),
])
def test_url_images_refused_where_unsafe(server, url, status, words):
    body = {"model_id": "shapes-yolov8seg", "api_key": KEY, "image": {"type": "url", "value": url}}
    r = httpx.post(f"{server.url}/infer/instance_segmentation", json=body, timeout=60)
    assert r.status_code == status and words in r.json()["message"]


class _Images(BaseHTTPRequestHandler):
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.png)))
        self.end_headers()
        self.wfile.write(self.png)

    def log_message(self, *args):
        pass


def test_url_fetcher_follows_no_redirect():
    """Private addresses allowed (a lab setting) to reach a local server: a redirect is still refused."""
    httpd = HTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        fetch = UrlFetcher(UrlConfig(enabled=True, allow_private=True), 1_000_000)
        assert fetch(f"{base}/a.png") == _Images.png
        with pytest.raises(ServeError, match="redirects are not followed") as err:
            fetch(f"{base}/redirect")
        assert err.value.status == 400
        with pytest.raises(ServeError, match="over the limit of 10 bytes"):
            UrlFetcher(UrlConfig(enabled=True, allow_private=True), 10)(f"{base}/a.png")
        with pytest.raises(ServeError, match="loopback/private"):
            UrlFetcher(UrlConfig(enabled=True), 1_000_000)(f"{base}/a.png")
    finally:
        httpd.shutdown()
        thread.join(10)
