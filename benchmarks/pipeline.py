"""Pipeline efficiency: end-to-end fps beside each stage run alone, on the same clip.

Stages alone: decode only (PyAV, frame threading, BGR), inference only (letterbox +
ONNX Runtime), post-processing only (NMS + masks + RLE on stored outputs). End to end:
the threaded pipeline writing JSONL. Efficiency = end-to-end fps / slowest stage's fps.
The serial bound (every stage one after the other, no overlap) is printed too: on a
machine with fewer cores than busy stages, the stages share the cores and end-to-end
lands between the two.

    python benchmarks/pipeline.py [--frames 300] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import Pipeline  # noqa: E402
from pipeline.model import Model  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402
from sources.synthetic import write_clip  # noqa: E402

CACHE = ROOT / ".data" / "bench"


def bench_clip(frames: int, seed: int = 7) -> Path:
    path = CACHE / f"clip-{seed}-{frames}.mp4"
    if not path.exists():
        write_clip(path, None, frames, seed)
    return path


def decode_only(clip: Path) -> tuple[float, list]:
    keep = []
    t = time.perf_counter()
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        n = 0
        for f in c.decode(stream):
            img = f.to_ndarray(format="bgr24")
            if len(keep) < 60:
                keep.append(img)
            n += 1
    return n / (time.perf_counter() - t), keep


def inference_only(model: Model, frames: list) -> tuple[float, list]:
    outs = []
    t = time.perf_counter()
    for img in frames:
        blob, geoms = model.preprocess([img])
        outs.append(([o.copy() for o in model.run(blob)], geoms[0]))
    return len(frames) / (time.perf_counter() - t), outs


def postprocess_only(model: Model, outs: list) -> float:
    t = time.perf_counter()
    for outputs, g in outs:
        model.postprocess(outputs, 0, g).rle()
    return len(outs) / (time.perf_counter() - t)


def end_to_end(clip: Path, threads: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"streams": [{"id": "bench", "source": {"type": "file", "path": str(clip)}}],
               "model": {"intra_op_threads": threads}, "batching": {"max_batch_size": batch},
               "sinks": [{"type": "jsonl", "path": os.path.join(tmp, "r.jsonl")}]}
        pipeline = Pipeline.from_config(cfg)
        s = pipeline.run(handle_signals=False)
    return s["results"] / s["wall_s"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    clip = bench_clip(args.frames)
    model = Model.load(default_model_path(), intra_op_threads=args.threads)
    dec_fps, frames = decode_only(clip)
    inf_fps, outs = inference_only(model, frames)
    post_fps = postprocess_only(model, outs)
    e2e = end_to_end(clip, args.threads, args.batch)
    stages = {"decode": dec_fps, "inference": inf_fps, "postprocess": post_fps}
    slowest = min(stages, key=stages.get)
    serial = 1 / sum(1 / v for v in stages.values())
    print(f"clip: {clip.name} ({args.frames} frames 1280x720 H.264), {os.cpu_count()} CPU cores, ORT threads {args.threads}")
    print(f"{'stage':<22} {'fps':>8} {'ms/frame':>9}")
    for name, fps in stages.items():
        print(f"{name + ' only':<22} {fps:>8.1f} {1000 / fps:>9.2f}")
    print(f"{'serial bound':<22} {serial:>8.1f} {1000 / serial:>9.2f}")
    print(f"{'end to end':<22} {e2e:>8.1f} {1000 / e2e:>9.2f}")
    ratio = e2e / stages[slowest]
    print(f"efficiency: end-to-end / slowest stage ({slowest}) = {ratio:.3f}; end-to-end / serial bound = {e2e / serial:.3f}")
    return {"stages": stages, "serial": serial, "end_to_end": e2e, "efficiency": ratio, "slowest": slowest}


if __name__ == "__main__":
    main()
