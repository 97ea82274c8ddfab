"""A camera added and removed over HTTP while a ``vidpipe serve`` pipeline runs, and a
server restarted with ``--state``: what the running streams feel, how soon the new one
delivers, what its removal gives back, how soon a restart resumes.

A real ``vidpipe serve`` process runs one pipeline made over HTTP: a camera (the test RTSP
server, tests/rtsp_server.py: 640×360 H.264 at ``--fps``) and a 640×360 file looped in
real time at the same rate. A second camera (another RTSP server) is added with
``POST /pipelines/{id}/streams``, then removed with ``DELETE``. Results are read the way a
client would, long-polling ``/pipelines/{id}/results``. Each phase gives the first
camera's (and the file's) result rate and end-to-end latency (p50/p95, the pipeline's
``latency_ms``), side by side in one run; the added camera's time from the POST to its
first result; the server's vidpipe threads and open sockets before the add and after the
removal. Then the server is stopped and started again with the same ``--state`` file: the
time from the new process's start to its ready line and to the restored pipeline's first
result.

    python benchmarks/streams_http.py [--seconds 10] [--fps 5 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import CACHE, bench_clip, table  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.rtsp_camera import RtspServer, write_camera_aus  # noqa: E402
from tests.serve_pipelines_helpers import open_sockets, scraped  # noqa: E402
from tests.serve_process import ServeProcess  # noqa: E402

NAME = "streams-http"
TITLE = "Streams added and removed over HTTP (vidpipe serve)"
SERVE_CONFIG = {"backend": {"intra_op_threads": 2}}
END = "vidpipe.end/1"


def _rtsp(sid: str, url: str) -> dict:
    return {"id": sid, "source": {"type": "rtsp", "url": url, "open_timeout": 5.0, "stall_timeout": 5.0}}


class Reader:
    """Long-polls a pipeline's results; keeps (arrival time, stream, latency ms) of each."""

    def __init__(self, http: httpx.Client, pid: str) -> None:
        self.http, self.pid, self.next = http, pid, 0
        self.rows: list[tuple[float, str, float]] = []

    def read(self, seconds: float) -> None:
        """Reads for ``seconds`` (a phase's length: the results keep coming meanwhile)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            body = self.http.get(f"/pipelines/{self.pid}/results", params={"after": self.next, "wait": 1}).json()
            now = time.monotonic()
            self.rows += [(now, r["stream"], r["latency_ms"]) for r in body["records"] if r["schema"] != END]
            self.next = body["next"]

    def first(self, sid: str, timeout: float = 30.0) -> float:
        """Reads until ``sid``'s first result; its arrival time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [t for t, s, _ in self.rows if s == sid]
            if found:
                return found[0]
            self.read(0.05)
        raise RuntimeError(f"no result of {sid} within {timeout} s")

    def phase(self, sid: str, start: float, end: float) -> dict:
        lat = [ms for t, s, ms in self.rows if s == sid and start <= t < end]
        p50, p95 = np.percentile(lat, [50, 95]) if lat else (float("nan"), float("nan"))
        return {"fps": len(lat) / max(1e-9, end - start), "p50_ms": float(p50), "p95_ms": float(p95)}


def _pipeline_spec(camera: str, clip: Path) -> dict:
    return {"name": "site", "model": {"path": "shapes-yolov8seg", "intra_op_threads": 2},
            "streams": [_rtsp("cam1", camera),
                        {"id": "file", "source": {"type": "file", "path": str(clip), "realtime": True, "loop": True}}]}


def measure(seconds: float = 10.0, rates: tuple[float, ...] = (5.0, 8.0)) -> dict:
    """One run per camera frame rate."""
    return {"seconds": seconds, "runs": [measure_at(seconds, fps) for fps in rates]}


def measure_at(seconds: float, fps: float) -> dict:
    aus = write_camera_aus(CACHE / "camera.aus") if not (CACHE / "camera.aus").exists() else CACHE / "camera.aus"
    clip = bench_clip(int(fps * 4), seed=9, size=(640, 360), fps=fps)
    cam1, cam2 = RtspServer(aus, free_port(), fps).start(), RtspServer(aus, free_port(), fps).start()
    tmp = Path(tempfile.mkdtemp(prefix="vidpipe-bench-"))
    state = tmp / "state.json"
    try:
        with ServeProcess(tmp, SERVE_CONFIG, args=("--state", str(state))) as server, \
                httpx.Client(base_url=server.url, timeout=60) as http:
            assert server.proc is not None
            pid = http.post("/pipelines", json=_pipeline_spec(cam1.url, clip)).json()["id"]
            reader = Reader(http, pid)
            reader.first("cam1")
            reader.read(2.0)  # past the start-up
            t0 = time.monotonic()
            reader.read(seconds)
            before_threads = scraped(http)['vidpipe_serve_threads{kind="vidpipe"}']
            before_sockets = open_sockets(server.proc.pid)
            t1 = time.monotonic()
            assert http.post(f"/pipelines/{pid}/streams", json=_rtsp("cam2", cam2.url)).status_code == 201
            first_cam2 = reader.first("cam2") - t1
            t2 = time.monotonic()
            reader.read(seconds)
            t3 = time.monotonic()
            assert http.delete(f"/pipelines/{pid}/streams/cam2").status_code == 200
            t4 = time.monotonic()
            reader.read(seconds)
            t5 = time.monotonic()
            after_threads = scraped(http)['vidpipe_serve_threads{kind="vidpipe"}']
            after_sockets = open_sockets(server.proc.pid)
            phases = {name: {sid: reader.phase(sid, a, b) for sid in ("cam1", "file", "cam2")}
                      for name, a, b in (("before", t0, t1), ("during", t2, t3), ("after", t4, t5))}
        started = time.monotonic()  # the restart: the same state file, a new process
        with ServeProcess(tmp, SERVE_CONFIG, args=("--state", str(state))) as server, \
                httpx.Client(base_url=server.url, timeout=60) as http:
            ready = time.monotonic()
            restored = Reader(http, pid).first("cam1") - started
            http.delete(f"/pipelines/{pid}")
    finally:
        cam1.close()
        cam2.close()
    return {"seconds": seconds, "fps": fps, "phases": phases, "first_result_s": first_cam2, "remove_s": t4 - t3,
            "threads": [before_threads, after_threads], "sockets": [before_sockets, after_sockets],
            "restart_ready_s": ready - started, "restart_first_result_s": restored}


def render(data: dict) -> str:
    runs = data["runs"]
    text = [f"One pipeline made over HTTP on a `vidpipe serve` process (ORT 2 threads): camera 1 (the test RTSP server, "
            "640×360 H.264) and a 640×360 file looped in real time at the same frame rate; camera 2 (a second RTSP "
            "server, the same) added with `POST /pipelines/{id}/streams`, then removed with `DELETE`; "
            f"{data['seconds']:g} s per phase; results long-polled from `/pipelines/{{id}}/results`, latency = the "
            "pipeline's `latency_ms` (capture to result). One run per frame rate, one after the other."]
    for run in runs:
        text += ["", f"**{run['fps']:g} fps** (three streams: {3 * run['fps']:g} frames/s for the model)", "", render_run(run)]
    return "\n".join(text)


def render_run(data: dict) -> str:
    ph = data["phases"]
    rows = []
    for name, label in (("before", "before"), ("during", "+ camera 2"), ("after", "after its removal")):
        line = [label]
        for sid in ("cam1", "file"):
            p = ph[name][sid]
            line += [f"{p['fps']:.1f}", f"{p['p50_ms']:.0f} / {p['p95_ms']:.0f}"]
        c1, b1 = ph[name]["cam1"], ph["before"]["cam1"]
        line += [f"{c1['fps'] / b1['fps']:.2f}× / {c1['p50_ms'] / b1['p50_ms']:.2f}×"]
        rows.append(line)
    during, before = ph["during"]["cam1"], ph["before"]["cam1"]
    rate, latency = during["fps"] / before["fps"], during["p50_ms"] / before["p50_ms"]
    ok = rate >= 0.9 and latency <= 1.1
    return "\n".join([
        table(["phase", "camera 1 results/s", "camera 1 latency p50 / p95 ms", "file results/s", "file latency p50 / p95 ms",
               "camera 1 rate / p50 vs before"], rows), "",
        f"Camera 2: first result {data['first_result_s']:.2f} s after its POST (target ≤ 2 s: "
        f"{'met' if data['first_result_s'] <= 2 else 'not met'}), {ph['during']['cam2']['fps']:.1f} results/s, removed in "
        f"{data['remove_s']:.2f} s (drained). While it ran, camera 1's rate was {rate:.2f}× and its p50 latency {latency:.2f}× "
        f"of before (target: no dip over 10 %: {'met' if ok else 'not met'}). The server's vidpipe threads "
        f"{data['threads'][0]:g} before the add, {data['threads'][1]:g} after the removal; its open sockets "
        f"{data['sockets'][0]} and {data['sockets'][1]}.",
        f"Restarted with `--state`: ready {data['restart_ready_s']:.2f} s after the process started, the restored "
        f"pipeline's first result {data['restart_first_result_s']:.2f} s after (target ≤ 5 s: "
        f"{'met' if data['restart_first_result_s'] <= 5 else 'not met'}).",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--fps", type=float, nargs="+", default=[5.0, 8.0], help="the cameras' and the file's frame rates")
    args = parser.parse_args(argv)
    data = measure(args.seconds, tuple(args.fps))
    print(render(data))
    return data


if __name__ == "__main__":
    main()
