"""Shared fixtures: real encoded clips made by the synthetic writer, the bundled model."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import settings

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
SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"


def _rtsp_server_usable() -> str | None:
    """None when the system interpreter has gst-rtsp-server and the elements; else why not."""
    import subprocess

    check = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
             "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
             "missing=[e for e in ('appsrc','h264parse','rtph264pay') if not Gst.ElementFactory.find(e)];"
             "assert not missing, missing")
    try:
        proc = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


class RtspServer:
    """One server process on 127.0.0.1; kill / restart / pause it like a flaky camera."""

    def __init__(self, aus: Path, port: int, fps: float = 30.0) -> None:
        self.aus, self.port, self.fps = aus, port, fps
        self.proc = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self, timeout: float = 20.0) -> RtspServer:
        import selectors
        import subprocess
        import time

        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--aus", str(self.aus),
                                      "--fps", str(self.fps)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    return self
                if not line:
                    break
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        self.close()
        raise RuntimeError(f"RTSP server did not start: {err}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        import signal as _signal
        import subprocess

        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(_signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def rtsp_usable() -> None:
    why = _rtsp_server_usable()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the RTSP tests, but the server cannot start: {why} (run `make system-deps`)")
        pytest.skip(f"no gst-rtsp-server for {SYSTEM_PYTHON} (apt unavailable?): {why}")


@pytest.fixture(scope="session")
def camera_aus(media_dir) -> Path:
    """2 s of the synthetic world, 640×360, H.264 access units (GOP 15, no B-frames)."""
    import struct
    from fractions import Fraction

    import av

    from sources.scene import SyntheticScene

    path = media_dir / "camera.aus"
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 640, 360, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 30), 30
    ctx.options = {"preset": "veryfast", "g": "15", "bf": "0", "crf": "23", "repeat-headers": "1"}
    scene = SyntheticScene(5, 640, 360)
    with path.open("wb") as fh:
        frames = []
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(scene.step()[0], format="bgr24")
            frame.pts = i
            frames.extend(ctx.encode(frame))
        frames.extend(ctx.encode(None))
        for p in frames:
            data = bytes(p)
            fh.write(struct.pack("<IB", len(data), int(p.is_keyframe)))
            fh.write(data)
    return path


@pytest.fixture
def rtsp_server(rtsp_usable, camera_aus):
    """A factory of servers; every server started here is closed after the test."""
    servers: list[RtspServer] = []

    def make(port: int | None = None, fps: float = 30.0, start: bool = True) -> RtspServer:
        server = RtspServer(camera_aus, port or free_port(), fps)
        servers.append(server)
        return server.start() if start else server

    yield make
    for s in servers:
        s.close()
