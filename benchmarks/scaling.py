"""Scaling with the number of streams: 1, 2, 4 and 8 file streams into one model.

Each stream is the same 1280×720 H.264 clip read as fast as the pipeline takes it, with
the tracker on and cross-stream batching (``max_batch_size`` = streams, at most 8). The
table gives results per second over all streams, per stream, the mean batch, and the
end-to-end latency; the plot (``scaling.png``) shows fps against the number of streams.

    python benchmarks/scaling.py [--frames 100] [--streams 1 2 4 8]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bench_clip, pyplot, table  # noqa: E402
from pipeline import Pipeline  # noqa: E402

NAME = "scaling"
TITLE = "Scaling with streams"


def run(clip: Path, streams: int, threads: int) -> dict:
    cfg = {"streams": [{"id": f"cam{i}", "source": {"type": "file", "path": str(clip)}} for i in range(streams)],
           "model": {"intra_op_threads": threads}, "tracker": {"type": "bytetrack"},
           "batching": {"max_batch_size": min(streams, 8), "max_wait_ms": 20}}
    s = Pipeline.from_config(cfg).run(handle_signals=False)
    return {"streams": streams, "fps": s["results"] / s["wall_s"], "results": s["results"], "batches": s["batches"],
            "drops": sum(s["drops"].values())}


def measure(frames: int = 100, streams: tuple[int, ...] = (1, 2, 4, 8), threads: int | None = None) -> dict:
    clip = bench_clip(frames)
    threads = threads or os.cpu_count() or 2
    return {"frames": frames, "threads": threads, "rows": [run(clip, n, threads) for n in streams]}


def render(data: dict) -> str:
    rows = data["rows"]
    base = rows[0]["fps"]
    body = [[r["streams"], f"{r['fps']:.1f}", f"{r['fps'] / r['streams']:.1f}", f"{r['results'] / max(1, r['batches']):.2f}",
             f"{r['fps'] / base:.2f}×"] for r in rows]
    return "\n".join([
        f"N file streams × {data['frames']} frames 1280×720 into one model (ONNX Runtime {data['threads']} threads), "
        "tracker on, max_batch_size = N, files read as fast as the pipeline takes them (latency under load: "
        "see the latency section).", "",
        table(["streams", "results/s (all)", "per stream", "mean batch", "vs 1 stream"], body),
        "", "Plot: `scaling.png` (fps against streams).",
    ])


def plot(data: dict, directory: Path) -> list[Path]:
    plt = pyplot()
    rows = data["rows"]
    n = [r["streams"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, [r["fps"] for r in rows], "o-", label="all streams")
    ax.plot(n, [r["fps"] / r["streams"] for r in rows], "s--", label="per stream")
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(v) for v in n])
    ax.set_xlabel("streams")
    ax.set_ylabel("results per second")
    ax.set_title("vidpipe: throughput against streams")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = directory / "scaling.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return [path]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: cores)")
    args = parser.parse_args(argv)
    data = measure(args.frames, tuple(args.streams), args.threads)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
