"""Soak test (not run in CI): N minutes of a realtime-paced, looping file at about twice
what the pipeline can process, sampling RSS, latency and drops every second. Prints the
trend (least-squares slope after a warm-up minute) and writes a plot.

    python benchmarks/soak.py --minutes 10 [--plot benchmarks/soak.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_clip, pyplot, table  # noqa: E402
from pipeline import Pipeline  # noqa: E402

NAME = "soak"
TITLE = "Soak"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(minutes: float = 10.0, fps: float = 60.0, threads: int = 1) -> dict:
    clip = bench_clip(int(fps * 10), seed=11, fps=fps)
    cfg = {"streams": [{"id": "soak", "source": {"type": "file", "path": str(clip), "realtime": True, "loop": True}}],
           "model": {"intra_op_threads": threads}, "tracker": {"type": "bytetrack"}}
    pipeline = Pipeline.from_config(cfg)
    samples = []
    lat: list[float] = []
    t0 = time.monotonic()
    next_sample = t0 + 1.0
    end = t0 + minutes * 60
    with pipeline:
        for r in pipeline:
            lat.append(r.latency_ms)
            now = time.monotonic()
            if now >= next_sample:
                stats = pipeline.streams["soak"]
                samples.append({"t": now - t0, "rss_mb": rss_mb(), "latency_ms": float(np.mean(lat)) if lat else 0.0,
                                "results": stats.results, "frames": stats.frames, "drops": sum(stats.drops_snapshot().values())})
                lat = []
                next_sample += 1.0
            if now >= end:
                pipeline.stop()
    t = np.array([s["t"] for s in samples]) / 60
    rss = np.array([s["rss_mb"] for s in samples])
    latency = np.array([s["latency_ms"] for s in samples])
    warm = t >= min(1.0, t[-1] / 2)  # slopes after a warm-up minute (or half of a shorter run)
    last = samples[-1]
    offered = last["results"] + last["drops"]
    summary = {
        "minutes": round(float(t[-1]), 2), "fps": fps, "threads": threads, "results": last["results"], "drops": last["drops"],
        "overload": round(offered / max(1, last["results"]), 2), "warm_up_minutes": round(float(t[warm][0]), 2),
        "rss_mb_start": round(float(rss[warm][0]), 1), "rss_mb_end": round(float(rss[-1]), 1),
        "rss_slope_mb_per_min": round(float(np.polyfit(t[warm], rss[warm], 1)[0]), 3),
        "latency_ms_mean": round(float(latency[warm].mean()), 1),
        "latency_ms_p99": round(float(np.percentile(latency[warm], 99)), 1),
        "latency_slope_ms_per_min": round(float(np.polyfit(t[warm], latency[warm], 1)[0]), 3),
    }
    return {"summary": summary, "samples": samples}


def render(data: dict, plot_name: str = "soak.png") -> str:
    s = data["summary"]
    verdict = "met" if abs(s["rss_slope_mb_per_min"]) < 1 else "NOT met"
    return "\n".join([
        f"A 1280×720 file at {s['fps']:g} fps, paced in real time and looping, into the bundled model on "
        f"{s['threads']} ONNX Runtime thread(s) with the tracker, for {s['minutes']:g} minutes: {s['overload']}× overload "
        f"({s['results']} results, {s['drops']} drops counted). RSS and mean latency sampled every second; slopes "
        f"after the first {s['warm_up_minutes']:g} minute(s).", "",
        table(["RSS start → end", "RSS slope", "mean latency", "latency p99 (per-second means)", "latency slope"],
              [[f"{s['rss_mb_start']} → {s['rss_mb_end']} MB", f"{s['rss_slope_mb_per_min']:+.2f} MB/min",
                f"{s['latency_ms_mean']:.0f} ms", f"{s['latency_ms_p99']:.0f} ms", f"{s['latency_slope_ms_per_min']:+.2f} ms/min"]]),
        "", (f"Target RSS slope under 1 MB/min after warm-up: {verdict}." if s["minutes"] >= 5 else
             "A short run: the slopes are not trends yet, and inside `vidpipe bench` the RSS is the whole suite's "
             "process; the memory target is judged by the 10-minute soak (`vidpipe bench soak`).")
        + f" Plot: `{plot_name}` (RSS and latency over time).",
    ])


def plot(data: dict, path: Path) -> list[Path]:
    plt = pyplot()
    s, samples = data["summary"], data["samples"]
    t = np.array([x["t"] for x in samples]) / 60
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a.plot(t, [x["rss_mb"] for x in samples])
    a.set_ylabel("RSS (MB)")
    a.set_title(f"{s['overload']}x overload: RSS slope {s['rss_slope_mb_per_min']:.2f} MB/min, "
                f"latency slope {s['latency_slope_ms_per_min']:.2f} ms/min")
    b.plot(t, [x["latency_ms"] for x in samples])
    b.set_ylabel("latency, mean per second (ms)")
    b.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return [path]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=60.0, help="the file's (camera's) frame rate")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (fewer: more overload)")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "soak.png")
    parser.add_argument("--json", type=Path, help="also write the samples here")
    args = parser.parse_args(argv)
    data = measure(args.minutes, args.fps, args.threads)
    print(render(data, args.plot.name))
    if args.json:
        args.json.write_text(json.dumps(data))
    plot(data, args.plot)
    return data


if __name__ == "__main__":
    main()
