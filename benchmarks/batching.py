"""Cross-stream batching: throughput of 4 streams into one model at max_batch_size 1, 2, 4.

Four file streams (the same 1280×720 H.264 clip) run through one pipeline with the
tracker on; the table gives results per second over all streams, side by side in one run.

    python benchmarks/batching.py [--frames 100]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pipeline import bench_clip  # noqa: E402
from pipeline import Pipeline  # noqa: E402


def run(clip: Path, streams: int, batch: int, threads: int) -> dict:
    cfg = {"streams": [{"id": f"cam{i}", "source": {"type": "file", "path": str(clip)}} for i in range(streams)],
           "model": {"intra_op_threads": threads}, "tracker": {"type": "bytetrack"},
           "batching": {"max_batch_size": batch, "max_wait_ms": 20}}
    s = Pipeline.from_config(cfg).run(handle_signals=False)
    return {"streams": streams, "batch": batch, "fps": s["results"] / s["wall_s"], "batches": s["batches"], "results": s["results"]}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    clip = bench_clip(args.frames)
    rows = [run(clip, args.streams, b, args.threads) for b in (1, 2, 4)]
    print(f"{args.streams} streams x {args.frames} frames (1280x720), {os.cpu_count()} CPU cores")
    print(f"{'max_batch_size':>14} {'results/s':>10} {'mean batch':>11} {'vs batch 1':>10}")
    for r in rows:
        print(f"{r['batch']:>14} {r['fps']:>10.1f} {r['results'] / r['batches']:>11.2f} {r['fps'] / rows[0]['fps']:>9.2f}x")
    return rows


if __name__ == "__main__":
    main()
