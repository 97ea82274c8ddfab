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

from pipeline import Pipeline  # noqa: E402
from sources.synthetic import write_clip  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=60.0, help="the file's (camera's) frame rate")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (fewer: more overload)")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "soak.png")
    parser.add_argument("--json", type=Path, help="also write the samples here")
    args = parser.parse_args(argv)
    clip = ROOT / ".data" / "bench" / f"soak-{int(args.fps)}.mp4"
    if not clip.exists():
        write_clip(clip, None, int(args.fps * 10), seed=11, fps=args.fps)
    cfg = {"streams": [{"id": "soak", "source": {"type": "file", "path": str(clip), "realtime": True, "loop": True}}],
           "model": {"intra_op_threads": args.threads}, "tracker": {"type": "bytetrack"}}
    pipeline = Pipeline.from_config(cfg)
    samples = []
    lat: list[float] = []
    t0 = time.monotonic()
    next_sample = t0 + 1.0
    end = t0 + args.minutes * 60
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
    warm = t >= min(1.0, t[-1] / 2)
    rss_slope = float(np.polyfit(t[warm], rss[warm], 1)[0])
    lat_slope = float(np.polyfit(t[warm], latency[warm], 1)[0])
    last = samples[-1]
    offered = last["results"] + last["drops"]
    out = {
        "minutes": round(float(t[-1]), 2), "results": last["results"], "drops": last["drops"],
        "overload": round(offered / max(1, last["results"]), 2),
        "rss_mb_start": round(float(rss[warm][0]), 1), "rss_mb_end": round(float(rss[-1]), 1),
        "rss_slope_mb_per_min": round(rss_slope, 3), "latency_ms_mean": round(float(latency[warm].mean()), 1),
        "latency_slope_ms_per_min": round(lat_slope, 3),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": out, "samples": samples}))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a.plot(t, rss)
    a.set_ylabel("RSS (MB)")
    a.set_title(f"soak: {out['overload']}x overload, RSS slope {rss_slope:.2f} MB/min, latency slope {lat_slope:.2f} ms/min")
    b.plot(t, latency)
    b.set_ylabel("latency (ms)")
    b.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=80)
    return out


if __name__ == "__main__":
    main()
