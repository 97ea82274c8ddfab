"""The test RTSP camera, client side: its access units written from the synthetic world,
and :class:`RtspServer`, one tests/rtsp_server.py process (gst-rtsp-server under the system
interpreter, which has python3-gi) to start, kill, pause and restart like a flaky camera.
Used by the tests' ``rtsp_server`` fixture and by the benchmarks that need a camera.
"""

from __future__ import annotations

from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"


def rtsp_server_usable() -> str | None:
    """None when the system interpreter has gst-rtsp-server and the elements; else why not."""
    import subprocess

    check = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
             "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
             "missing=[e for e in ('appsrc','h264parse','rtph264pay','h265parse','rtph265pay') if not Gst.ElementFactory.find(e)];"
             "assert not missing, missing")
    try:
        proc = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


class RtspServer:
    """One server process on 127.0.0.1; kill / restart / pause it like a flaky camera."""

    def __init__(self, aus: Path, port: int, fps: float = 30.0, log: Path | None = None, timestamp_now: bool = False,
                 codec: str = "h264") -> None:
        self.aus, self.port, self.fps, self.log, self.timestamp_now = aus, port, fps, log, timestamp_now
        self.codec = codec  # of the access units: "h264" or "hevc"
        self.proc = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self, timeout: float = 20.0) -> RtspServer:
        import selectors
        import subprocess
        import time

        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--aus", str(self.aus),
                                      "--fps", str(self.fps), *(["--log", str(self.log)] if self.log else []),
                                      *(["--timestamp-now"] if self.timestamp_now else []), "--codec", self.codec],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


STAMP_BITS, STAMP_CELL = 6, 16  # the stamp: the access unit's index in 6 white/black 16-px squares


def stamp_cells(height: int) -> list[tuple[int, int]]:
    """Top-left corners (x, y) of the stamp's squares: a row at the frame's bottom left."""
    return [(8 + i * (STAMP_CELL + 4), height - STAMP_CELL - 4) for i in range(STAMP_BITS)]


def read_stamp(image) -> int:
    """The access unit index stamped in a decoded frame (see ``write_camera_aus(stamp=True)``)."""
    half = STAMP_CELL // 2
    bits = [int(image[y + half - 2:y + half + 2, x + half - 2:x + half + 2].mean() > 127) for x, y in stamp_cells(image.shape[0])]
    return sum(b << i for i, b in enumerate(bits))


def write_camera_aus(path: Path, stamp: bool = False, size: tuple[int, int] = (640, 360), codec: str = "h264") -> Path:
    """2 s of the synthetic world (``size``: 640×360), H.264 (or ``codec="hevc"``: H.265) access
    units (GOP 15, no B-frames, parameter sets before each keyframe), as records of
    [u32 length, u8 keyframe, bytes] (what tests/rtsp_server.py reads);
    ``stamp``: each frame carries its index in its pixels (:func:`read_stamp`), so a frame
    that comes out of a pipeline can be matched with when the server sent it."""
    import struct
    from fractions import Fraction

    import av

    from sources.scene import SyntheticScene

    ctx = av.CodecContext.create("libx264" if codec == "h264" else "libx265", "w")
    width, height = size
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 30), 30
    if codec == "h264":
        ctx.options = {"preset": "veryfast", "g": "15", "bf": "0", "crf": "23", "repeat-headers": "1"}
    else:
        ctx.options = {"preset": "veryfast", "crf": "28",
                       "x265-params": "keyint=15:min-keyint=15:bframes=0:repeat-headers=1:log-level=error"}
    scene = SyntheticScene(5, width, height)
    with path.open("wb") as fh:
        frames = []
        for i in range(60):
            image = scene.step()[0].copy()
            if stamp:
                for bit, (x, y) in enumerate(stamp_cells(height)):
                    image[y:y + STAMP_CELL, x:x + STAMP_CELL] = 255 if (i >> bit) & 1 else 0
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            frames.extend(ctx.encode(frame))
        frames.extend(ctx.encode(None))
        for p in frames:
            data = bytes(p)
            fh.write(struct.pack("<IB", len(data), int(p.is_keyframe)))
            fh.write(data)
    return path
