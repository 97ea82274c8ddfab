"""Shared fixtures: real encoded clips made by the synthetic writer, the bundled model."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import settings

from tests.rtsp_camera import SYSTEM_PYTHON, RtspServer, rtsp_server_usable, write_camera_aus

os.environ.setdefault("OMP_NUM_THREADS", "1")

# In CI the property tests replay the same examples (a new counterexample is found by
# local runs, then pinned as a plain test), so a red CI always means a change broke it.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


def _clip(media_dir: Path, name: str, frames: int, seed: int, size: str = "1280x720") -> tuple[Path, Path]:
    from sources.synthetic import main as write_main

    out, gt = media_dir / f"{name}.mp4", media_dir / f"{name}.gt.json"
    if not out.exists():
        assert write_main(["--out", str(out), "--gt", str(gt), "--frames", str(frames), "--seed", str(seed), "--size", size]) == 0
    return out, gt


@pytest.fixture(scope="session")
def small_clip(media_dir) -> Path:
    """40 frames, 640×360: fast, for runtime tests."""
    return _clip(media_dir, "small", 40, 11, "640x360")[0]


@pytest.fixture(scope="session")
def heldout_clip(media_dir) -> tuple[Path, Path]:
    """The held-out accuracy clip: seed 7 (training uses seeds >= 1000), 300 frames, 1280×720."""
    return _clip(media_dir, "heldout", 300, 7)


@pytest.fixture(scope="session")
def model():
    from pipeline.infer.model import Model
    from pipeline.zoo import default_model_path

    return Model.load(default_model_path(), intra_op_threads=2)


@pytest.fixture(scope="session")
def clips(media_dir) -> dict[str, Path]:
    """The short clips of the tests whose streams come and go (tests/stream_helpers.py)."""
    from tests.stream_helpers import make_clips

    folder = media_dir / "stream-clips"
    folder.mkdir(exist_ok=True)
    return make_clips(folder)


@pytest.fixture(scope="session")
def gt_small(media_dir) -> dict:
    _, gt = _clip(media_dir, "small", 40, 11, "640x360")
    return json.loads(gt.read_text())


@pytest.fixture(autouse=True)
def no_thread_leak():
    """Every test must leave no vidpipe thread behind."""
    yield
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("vidpipe:") and t.is_alive()]
    for t in threading.enumerate():
        if t.name.startswith("vidpipe:"):
            t.join(3)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("vidpipe:") and t.is_alive()]
    assert not leftover, f"threads left alive: {leftover}"


# -- a real RTSP server (tests/rtsp_server.py under the system interpreter) -------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def rtsp_usable() -> None:
    why = rtsp_server_usable()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the RTSP tests, but the server cannot start: {why} (run `make system-deps`)")
        pytest.skip(f"no gst-rtsp-server for {SYSTEM_PYTHON} (apt unavailable?): {why}")


@pytest.fixture(scope="session")
def camera_aus(media_dir) -> Path:
    """2 s of the synthetic world, 640×360, H.264 access units (tests/rtsp_camera.py)."""
    return write_camera_aus(media_dir / "camera.aus")


@pytest.fixture(scope="session")
def stamped_camera_aus(media_dir) -> Path:
    """The camera's access units with each frame's index stamped in its pixels (read_stamp)."""
    return write_camera_aus(media_dir / "camera-stamped.aus", stamp=True)


@pytest.fixture(scope="session")
def stamped_hevc_camera_aus(media_dir) -> Path:
    """The same, H.265."""
    return write_camera_aus(media_dir / "camera-stamped-hevc.aus", stamp=True, codec="hevc")


@pytest.fixture
def rtsp_server(rtsp_usable, camera_aus):
    """A factory of servers; every server started here is closed after the test."""
    servers: list[RtspServer] = []

    def make(port: int | None = None, fps: float = 30.0, start: bool = True, aus: Path | None = None,
             log: Path | None = None, codec: str = "h264") -> RtspServer:
        """``aus``: other access units (e.g. stamped ones, of ``codec``); ``log``: where the
        server logs each send."""
        server = RtspServer(aus or camera_aus, port or free_port(), fps, log=log, timestamp_now=log is not None, codec=codec)
        servers.append(server)
        return server.start() if start else server

    yield make
    for s in servers:
        s.close()
