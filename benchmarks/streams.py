"""Streams added and removed at runtime: what a second stream costs the first, and how soon
it delivers.

A camera stand-in (a 1280×720 clip looped in real time at ``--fps``) runs alone, then a
second stream is added with ``Pipeline.add_stream`` — another camera (the same, paced), or
a file read as fast as the pipeline takes it — then removed with ``remove_stream`` (drain).
For each phase the table gives the first stream's result rate and end-to-end latency
(p50/p95), side by side in one run, and for the added stream its time to first result
(from the ``add_stream`` call) and how long ``remove_stream`` took (draining included).

    python benchmarks/streams.py [--seconds 10] [--fps 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bench_clip, table  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from pipeline.app.config import load_stream_config  # noqa: E402
from pipeline.infer.model import Model  # noqa: E402
from pipeline.track.config import TrackerConfig  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402
from sinks.callback import CallbackSink  # noqa: E402
from sources.factory import build_source  # noqa: E402

NAME = "streams"
TITLE = "Streams added and removed at runtime"


def _camera(sid: str, clip: Path) -> dict:
    return {"id": sid, "source": {"type": "file", "path": str(clip), "realtime": True, "loop": True}}


def _phase(records: list[tuple[float, str, float]], start: float, end: float) -> dict:
    """The first stream's results arriving in [start, end): rate and latency."""
    lat = [ms for t, sid, ms in records if sid == "first" and start <= t < end]
    p50, p95 = (np.percentile(lat, [50, 95]) if lat else (float("nan"), float("nan")))
    return {"fps": len(lat) / max(1e-9, end - start), "p50_ms": float(p50), "p95_ms": float(p95)}


def run(model: Model, clip: Path, kind: str, second: dict, seconds: float) -> dict:
    """One sequence: alone, with ``second`` (a ``kind``) added, after it is removed."""
    records: list[tuple[float, str, float]] = []
    first_result = threading.Event()
    added: dict[str, float] = {}

    def seen(r) -> None:
        records.append((time.monotonic(), r.stream_id, r.latency_ms))
        if r.stream_id == "second" and "first" not in added:
            added["first"] = time.monotonic()
            first_result.set()

    cfg = load_stream_config(_camera("first", clip))
    source = build_source(cfg.id, cfg.source)
    source.open()
    pipeline = Pipeline([source], model, [CallbackSink(seen)], streams={"first": cfg}, tracker=TrackerConfig(type="bytetrack"))
    runner = threading.Thread(target=pipeline.run, kwargs={"handle_signals": False}, name="bench-run")
    runner.start()
    try:
        while not any(sid == "first" for _, sid, _ in records):
            time.sleep(0.05)
        time.sleep(1.0)  # past the start-up
        t0 = time.monotonic()
        time.sleep(seconds)
        t1 = time.monotonic()
        pipeline.add_stream(second)
        first_result.wait(60)
        time.sleep(seconds)
        t2 = time.monotonic()
        pipeline.remove_stream("second")
        t3 = time.monotonic()
        time.sleep(seconds)
        t4 = time.monotonic()
    finally:
        pipeline.stop()
        runner.join(60)
    return {"second": kind,
            "before": _phase(records, t0, t1), "during": _phase(records, added.get("first", t1), t2),
            "after": _phase(records, t3, t4), "first_result_s": added.get("first", float("nan")) - t1,
            "remove_s": t3 - t2, "second_results": sum(1 for _, sid, _ in records if sid == "second")}


def measure(seconds: float = 10.0, fps: float = 15.0, threads: int | None = None) -> dict:
    threads = threads or os.cpu_count() or 2
    clip = bench_clip(int(fps * 4), fps=fps)  # 4 s, looped
    model = Model.load(default_model_path(), intra_op_threads=threads)
    file_clip = bench_clip(int(fps * seconds * 2), seed=8, fps=fps)  # the file: more than it can read meanwhile
    rows = [run(model, clip, "camera", _camera("second", clip), seconds),
            run(model, clip, "file", {"id": "second", "source": {"type": "file", "path": str(file_clip)}}, seconds)]
    return {"seconds": seconds, "fps": fps, "threads": threads, "rows": rows}


def render(data: dict) -> str:
    body = []
    for r in data["rows"]:
        for phase in ("before", "during", "after"):
            ph = r[phase]
            extra = (f"{r['first_result_s']:.2f} s to its first result" if phase == "during"
                     else f"removed in {r['remove_s']:.2f} s ({r['second_results']} results)" if phase == "after" else "")
            body.append([f"+ {r['second']}" if phase == "during" else phase, f"{ph['fps']:.1f}",
                         f"{ph['p50_ms']:.0f} / {ph['p95_ms']:.0f}", f"{ph['fps'] / r['before']['fps']:.2f}×", extra])
    return "\n".join([
        f"The first stream: a 1280×720 clip looped in real time at {data['fps']:g} fps (a camera stand-in); "
        f"{data['seconds']:g} s per phase; ORT {data['threads']} threads, tracker on. The second stream is a camera "
        "(the same, paced) or a file read as fast as the pipeline takes it.", "",
        table(["phase", "first stream results/s", "latency p50 / p95 ms", "vs before", "second stream"], body), "",
        "A file read flat out shares the model with the camera: the camera's rate holds only where the model has "
        "room for both (its ring drops the oldest frame otherwise, and its latency stays bounded).",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--fps", type=float, default=15.0, help="the camera stand-in's frame rate")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    data = measure(args.seconds, args.fps, args.threads)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
