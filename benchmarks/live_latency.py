"""Glass-to-result latency of a live camera: from the moment the test RTSP server sends a
frame to the moment its result reaches a sink.

The camera (tests/rtsp_server.py) serves a 1280×720 H.264 clip at 30 fps whose frames
carry their index in their pixels (a 6-bit stamp, tests/rtsp_camera.py) and logs the wall
time at which it sends each one. A pipeline (bundled model, ORT 2 threads, tracker) reads
the stream; a callback sink reads the stamp of each result's frame and the wall time, so
each result is matched with its frame's send time: the latency includes RTP, the jitter
buffer, demuxing, decoding, the rings, inference, post-processing and tracking. Beside it,
the pipeline's own per-stage timings of the same results (decode, preprocess, inference,
post-processing, tracking), p50. Each RTSP client is measured in turn on the same camera:
vidpipe's own (sources/rtsp: an access unit goes out on its RTP marker) and FFmpeg's demuxer.
``--spinning-pairs N`` adds N alternating runs of vidpipe's client with ONNX Runtime's
spinning off (vidpipe's default) and on, side by side.

    python benchmarks/live_latency.py [--seconds 20] [--fps 30] [--clients vidpipe ffmpeg] [--spinning-pairs 3]
"""

from __future__ import annotations

import argparse
import bisect
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
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


def run_until(pipeline: Pipeline, done: threading.Event, timeout: float, name: str) -> int:
    """Run ``pipeline`` in a thread until ``done`` (or ``timeout`` s), stop and join it;
    the frames its stream "cam" dropped."""
    runner = threading.Thread(target=pipeline.run, kwargs={"handle_signals": False}, name=name)
    runner.start()
    done.wait(timeout)
    pipeline.stop()
    runner.join(60)
    return sum(pipeline.streams["cam"].drops_snapshot().values()) if "cam" in pipeline.streams else 0


def sent_times(log: Path) -> dict[int, list[float]]:
    """Per access-unit index, the wall times it was sent (sorted; the clip loops)."""
    sent: dict[int, list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        t, index = line.split()
        sent[int(index)].append(float(t))
    return sent


def stamped_camera(size: tuple[int, int]) -> Path:
    """The cached access units of the stamped test camera at ``size`` (written on first use)."""
    aus = CACHE / f"camera-stamped-{size[0]}x{size[1]}.aus"
    if not aus.exists():
        aus.parent.mkdir(parents=True, exist_ok=True)  # a fresh checkout has no cache yet
        write_camera_aus(aus, stamp=True, size=size)
    return aus


def send_time(sent: dict[int, list[float]], index: int, t: float) -> float | None:
    """The latest send of frame ``index`` before its result at ``t`` (the clip loops), or None."""
    times = sent.get(index, [])
    k = bisect.bisect_right(times, t) - 1
    return times[k] if k >= 0 else None


def measure(seconds: float = 20.0, fps: float = 30.0, client: str = "vidpipe", allow_spinning: bool = False) -> dict:
    aus = stamped_camera((1280, 720))
    seen: list[tuple[float, int, dict[str, float]]] = []
    done = threading.Event()
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-live-") as tmp:
        log = Path(tmp) / "sent.log"
        camera = RtspServer(aus, free_port(), fps, log=log, timestamp_now=True).start()
        try:
            source = LiveVideoSource("cam", RtspSourceConfig(url=camera.url, client=client))
            model = Model.load("shapes-yolov8seg", intra_op_threads=2, allow_spinning=allow_spinning)
            start = time.monotonic()

            def on_result(r) -> None:
                seen.append((time.time(), read_stamp(r.image), {**r.timings, "pipeline": r.latency_ms}))
                if time.monotonic() - start > WARM_UP_S + seconds:
                    done.set()

            pipeline = Pipeline([source], model, [CallbackSink(on_result)], tracker=TrackerConfig(type="bytetrack"))
            drops = run_until(pipeline, done, WARM_UP_S + seconds + 60, "bench-live")
        finally:
            camera.close()
        sent = sent_times(log)
    t_first = seen[0][0] + WARM_UP_S
    latencies, parts = [], defaultdict(list)
    for t, index, timings in seen:
        t_sent = send_time(sent, index, t)
        if t < t_first or t_sent is None:
            continue
        latencies.append((t - t_sent) * 1e3)
        for stage in STAGES:
            parts[stage].append(timings.get(stage, 0.0))
    p50, p99 = np.percentile(latencies, [50, 99])
    stage_p50 = {s: float(np.median(v)) for s, v in parts.items()}
    before = [g - p for g, p in zip(latencies, parts["pipeline"])]  # sent -> vidpipe reads the packet
    return {"client": client, "allow_spinning": allow_spinning, "seconds": seconds, "fps": fps,
            "results": len(latencies), "drops": drops,
            "p50_ms": float(p50), "p99_ms": float(p99),
            "mean_ms": float(np.mean(latencies)), "stage_p50_ms": stage_p50, "before_p50_ms": float(np.median(before))}


def _row(run: dict) -> list[str]:
    st = run["stage_p50_ms"]
    work = st["decode"] + st["preprocess"] + st["inference"] + st["postprocess"]
    return [run["client"], f"{run['p50_ms']:.1f}", f"{run['p99_ms']:.1f}", f"{run['mean_ms']:.1f}",
            f"{run['before_p50_ms']:.1f}", f"{st['pipeline']:.1f}", " / ".join(f"{st[s]:.1f}" for s in STAGES[:-1]),
            f"{work:.1f}", str(run["drops"])]


def render(data: dict) -> str:
    runs = data["runs"]
    ours = runs[0]
    st = ours["stage_p50_ms"]
    work = st["decode"] + st["inference"] + st["postprocess"]
    bound = work + 15
    frame_ms = 1000 / data["fps"]
    lines = [
        f"A 1280×720 H.264 camera at {data['fps']:g} fps (the test RTSP server; each frame stamped with its index, its "
        "send time logged just before it is pushed to the network) into the bundled model (ORT 2 threads"
        f"{', spinning off' if ours.get('allow_spinning') is False else ''}) and the "
        "tracker; latency = the result's arrival at a sink minus its frame's send time (RTP, demux, decode, rings, "
        f"inference, post-processing, tracking). Each client for {data['seconds']:g} s after a {WARM_UP_S:g} s warm-up, "
        "one after the other on the same camera.", "",
        table(["RTSP client", "glass-to-result p50 ms", "p99 ms", "mean ms", "of p50: sent → packet read",
               "packet read → result (vidpipe)", "stages p50 ms: " + " / ".join(STAGES[:-1]),
               "decode + preprocess + inference + post-processing", "frames dropped"], [_row(r) for r in runs]), "",
        f"Target (vidpipe's client, the default): p50 ≤ decode + inference + post-processing + 15 ms = {bound:.1f} ms: "
        f"{'met' if ours['p50_ms'] <= bound else 'not met'} ({ours['p50_ms']:.1f}); p99 ≤ 2 × p50: "
        f"{'met' if ours['p99_ms'] <= 2 * ours['p50_ms'] else 'not met'}.", "",
        "The tail follows how busy the box is: the slowest 3 % of a run are frames whose inference took 35-42 ms "
        "against a 20 ms median, scattered, not bursts after keyframes, with no steal time in vmstat (2026-12-08). "
        "ONNX Runtime alone, timed with a camera's idle gaps between runs, has p99 1.35-1.8× its p50 on this VM, so "
        "p99 ≤ 2 × p50 end to end holds in some runs and not others (5 of 8 alternating 15 s runs that day). The live "
        "frame ring holds 1 frame (`rings.live_frames`): with 2, a frame could also wait behind another, and p99 was "
        "110 ms against 62 in alternating runs. On 2026-12-07 at 19:58 (2-frame ring, inference 19.4 ms) p50 27.5 "
        "and p99 48.5 ms.",
    ]
    lines += _spinning_lines(data.get("spinning", []))
    ffmpeg = next((r for r in runs if r["client"] == "ffmpeg"), None)
    if ffmpeg is not None:
        lines += ["", f"Where the time went: FFmpeg's RTSP demuxer hands an access unit over when the next one begins "
                  f"(its RTP H.264 depacketiser sets full parsing, and the parser closes a frame on the next frame's start; "
                  f"the RTP marker bit is not used): {ffmpeg['before_p50_ms']:.1f} ms from send to packet read here, about "
                  f"one frame interval ({frame_ms:.0f} ms). vidpipe's client closes the access unit on the marker: "
                  f"{ours['before_p50_ms']:.1f} ms. A raw RTSP client on a socket showed the rest of the old gap: the test "
                  "server's media pipeline reported 20 ms of latency (rtpbin's send path), so its sinks held every "
                  "packet 20 ms after the push; tests/rtsp_server.py now sets the pipeline's latency to 0, as a camera "
                  "sends an access unit as soon as it is encoded. Before both (2026-12-07, FFmpeg at 15 fps): p50 133.2 ms, "
                  "87.3 ms of it before the packet read."]
    return "\n".join(lines)


def _spinning_lines(pairs: list[dict]) -> list[str]:
    """Medians over the alternating pairs of runs with ONNX Runtime's spinning off and on."""
    if not pairs:
        return []

    def median(setting: str, figure: Callable[[dict], float]) -> float:
        return float(np.median([figure(p[setting]) for p in pairs]))

    cells = {k: (f"p50 {median(k, lambda r: r['p50_ms']):.1f}, p99 {median(k, lambda r: r['p99_ms']):.1f} ms, decode "
                 f"{median(k, lambda r: r['stage_p50_ms']['decode']):.1f} and inference "
                 f"{median(k, lambda r: r['stage_p50_ms']['inference']):.1f} ms p50, "
                 f"{sum(p[k]['drops'] for p in pairs)} frames dropped in all") for k in ("off", "on")}
    return ["", f"ONNX Runtime's spinning, {len(pairs)} alternating pairs of runs of vidpipe's client (medians of the "
                f"runs' figures): off (`model.allow_spinning: false`, the default) {cells['off']}; on (`true`) {cells['on']}."]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--clients", nargs="+", choices=("vidpipe", "ffmpeg"), default=["vidpipe", "ffmpeg"])
    parser.add_argument("--spinning-pairs", type=int, default=0)
    args = parser.parse_args(argv)
    data = {"seconds": args.seconds, "fps": args.fps, "runs": [measure(args.seconds, args.fps, c) for c in args.clients],
            "spinning": [{k: measure(args.seconds, args.fps, "vidpipe", spin) for k, spin in (("off", False), ("on", True))}
                         for _ in range(args.spinning_pairs)]}
    print(render(data))
    return data


if __name__ == "__main__":
    main()
