"""Glass-to-result latency of a live camera: from the moment the test RTSP server sends a
frame to the moment its result reaches a sink.

The camera (tests/rtsp_server.py) serves a 1280×720 H.264 clip at 30 fps whose frames
carry their index in their pixels (a 6-bit stamp, tests/rtsp_camera.py) and logs the wall
time at which it sends each one. A pipeline (bundled model, ORT 2 threads, tracker) reads
the stream; a callback sink reads the stamp of each result's frame and the wall time, so
each result is matched with its frame's send time: the latency includes RTP, the jitter
buffer, demuxing, decoding, the rings, inference, post-processing and tracking. Beside it,
the pipeline's own per-stage timings of the same results (decode, preprocess, inference,
post-processing, tracking), p50.

    python benchmarks/live_latency.py [--seconds 20] [--fps 30]
"""

from __future__ import annotations

import argparse
import bisect
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import CACHE, table  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from pipeline.infer.model import Model  # noqa: E402
from pipeline.track.config import TrackerConfig  # noqa: E402
from sinks.callback import CallbackSink  # noqa: E402
from sources.config import RtspSourceConfig  # noqa: E402
from sources.live import LiveVideoSource  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.rtsp_camera import RtspServer, read_stamp, write_camera_aus  # noqa: E402

NAME = "live-latency"
TITLE = "Glass-to-result latency of a live camera"
WARM_UP_S = 3.0
STAGES = ("decode", "preprocess", "inference", "postprocess", "track", "pipeline")


def _sent(log: Path) -> dict[int, list[float]]:
    """Per access-unit index, the wall times it was sent (sorted; the clip loops)."""
    sent: dict[int, list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        t, index = line.split()
        sent[int(index)].append(float(t))
    return sent


def measure(seconds: float = 20.0, fps: float = 30.0) -> dict:
    aus = CACHE / "camera-stamped-1280x720.aus"
    if not aus.exists():
        write_camera_aus(aus, stamp=True, size=(1280, 720))
    seen: list[tuple[float, int, dict[str, float]]] = []
    done = threading.Event()
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-live-") as tmp:
        log = Path(tmp) / "sent.log"
        camera = RtspServer(aus, free_port(), fps, log=log, timestamp_now=True).start()
        try:
            source = LiveVideoSource("cam", RtspSourceConfig(url=camera.url))
            model = Model.load("shapes-yolov8seg", intra_op_threads=2)
            start = time.monotonic()

            def on_result(r) -> None:
                seen.append((time.time(), read_stamp(r.image), {**r.timings, "pipeline": r.latency_ms}))
                if time.monotonic() - start > WARM_UP_S + seconds:
                    done.set()

            pipeline = Pipeline([source], model, [CallbackSink(on_result)], tracker=TrackerConfig(type="bytetrack"))
            runner = threading.Thread(target=pipeline.run, kwargs={"handle_signals": False}, name="bench-live")
            runner.start()
            done.wait(WARM_UP_S + seconds + 60)
            pipeline.stop()
            runner.join(60)
            drops = sum(pipeline.streams["cam"].drops_snapshot().values()) if "cam" in pipeline.streams else 0
        finally:
            camera.close()
        sent = _sent(log)
    t_first = seen[0][0] + WARM_UP_S
    latencies, parts = [], defaultdict(list)
    for t, index, timings in seen:
        times = sent.get(index, [])
        k = bisect.bisect_right(times, t) - 1  # the latest send of this frame before its result
        if t < t_first or k < 0:
            continue
        latencies.append((t - times[k]) * 1e3)
        for stage in STAGES:
            parts[stage].append(timings.get(stage, 0.0))
    p50, p99 = np.percentile(latencies, [50, 99])
    stage_p50 = {s: float(np.median(v)) for s, v in parts.items()}
    before = [g - p for g, p in zip(latencies, parts["pipeline"])]  # sent -> vidpipe reads the packet
    return {"seconds": seconds, "fps": fps, "results": len(latencies), "drops": drops, "p50_ms": float(p50), "p99_ms": float(p99),
            "mean_ms": float(np.mean(latencies)), "stage_p50_ms": stage_p50, "before_p50_ms": float(np.median(before))}


def render(data: dict) -> str:
    st = data["stage_p50_ms"]
    work = st["decode"] + st["preprocess"] + st["inference"] + st["postprocess"]
    rows = [[f"{data['p50_ms']:.1f}", f"{data['p99_ms']:.1f}", f"{data['mean_ms']:.1f}", f"{data['before_p50_ms']:.1f}",
             f"{st['pipeline']:.1f}", " / ".join(f"{st[s]:.1f}" for s in STAGES[:-1]), f"{work:.1f}"]]
    bound = work + 15
    frame_ms = 1000 / data["fps"]
    return "\n".join([
        f"A 1280×720 H.264 camera at {data['fps']:g} fps (the test RTSP server; each frame stamped with its index, its "
        "send time logged) into the bundled model (ORT 2 threads) and the tracker; latency = the result's arrival at a "
        "sink minus its frame's send time (RTP, jitter buffer, demux, decode, rings, inference, post-processing, "
        f"tracking). {data['results']} results over {data['seconds']:g} s after a {WARM_UP_S:g} s warm-up; "
        f"{data['drops']} frames dropped in all.", "",
        table(["glass-to-result p50 ms", "p99 ms", "mean ms", "of p50: sent → packet read", "packet read → result (vidpipe)",
               "stages p50 ms: " + " / ".join(STAGES[:-1]), "decode + preprocess + inference + post-processing"], rows), "",
        f"Target: p50 ≤ decode + inference + post-processing + 15 ms = {bound:.1f} ms: "
        f"{'met' if data['p50_ms'] <= bound else 'not met'}; p99 ≤ 2 × p50: "
        f"{'met' if data['p99_ms'] <= 2 * data['p50_ms'] else 'not met'}. From the packet's read on, vidpipe takes "
        f"{st['pipeline']:.1f} ms p50 for {work:.1f} ms of work. Before it, {data['before_p50_ms']:.1f} ms pass between the "
        f"server sending a frame and FFmpeg's RTSP demuxer handing its packet over, about one frame interval "
        f"({frame_ms:.0f} ms) plus 20 ms at every rate tried (5, 15, 30 fps), with plain PyAV reading the stream too "
        "(no vidpipe): something holds each frame until the next one comes — likely FFmpeg's H.264 parser on RTP "
        "(`need_parsing`: it returns a frame when the next one begins), or the test server's own parser; not found yet.",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args(argv)
    data = measure(args.seconds, args.fps)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
