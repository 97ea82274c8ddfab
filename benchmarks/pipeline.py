"""Pipeline efficiency: end-to-end fps beside each stage run alone, on the same clip.

Stages alone: decode only (PyAV, frame threading, BGR), inference only (letterbox +
ONNX Runtime), post-processing only (NMS + masks + RLE on stored outputs). End to end:
the threaded pipeline writing JSONL. Efficiency = end-to-end fps / slowest stage's fps.
The serial bound (every stage one after the other, no overlap) is printed too: on a
machine with fewer cores than busy stages, the stages share the cores and end-to-end
lands between the two.

    python benchmarks/pipeline.py [--frames 300] [--threads 2 1]
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

from benchmarks.common import bench_clip, table  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from pipeline.infer.model import Model  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402

NAME = "pipeline"
TITLE = "Pipeline efficiency"


def decode_only(clip: Path) -> tuple[float, list]:
    keep = []
    t = time.perf_counter()
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        n = 0
        for f in c.decode(stream):
            img = f.to_ndarray(format="bgr24")
            if len(keep) < 120:
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


def measure_one(clip: Path, threads: int, batch: int = 1, repeat: int = 3) -> dict:
    """Inference alone and end to end alternate ``repeat`` times (this VM's speed drifts by
    ±15 % over tens of seconds): each pair is measured under the same conditions, and the
    pair with the median ratio is reported."""
    model = Model.load(default_model_path(), intra_op_threads=threads)
    dec_fps, frames = decode_only(clip)
    runs = []
    for _ in range(repeat):
        inf_fps, outs = inference_only(model, frames)
        e2e = end_to_end(clip, threads, batch)
        runs.append((e2e / inf_fps, e2e, inf_fps))
    _, e2e, inf_fps = sorted(runs)[len(runs) // 2]
    post_fps = postprocess_only(model, outs)
    stages = {"decode": dec_fps, "inference": inf_fps, "postprocess": post_fps}
    slowest = min(stages, key=stages.get)
    serial = 1 / sum(1 / v for v in stages.values())
    return {"threads": threads, "stages": stages, "serial": serial, "end_to_end": e2e, "slowest": slowest,
            "efficiency": e2e / stages[slowest], "vs_serial": e2e / serial, "repeat": repeat}


def measure(frames: int = 300, threads: tuple[int, ...] = (2, 1), batch: int = 1, repeat: int = 3) -> dict:
    clip = bench_clip(frames)
    return {"frames": frames, "cores": os.cpu_count(), "runs": [measure_one(clip, t, batch, repeat) for t in threads]}


def render(data: dict) -> str:
    runs = data["runs"]
    head = ["stage"] + [f"ORT {r['threads']} thread{'s' if r['threads'] > 1 else ''}: fps (ms/frame)" for r in runs]

    def cells(get) -> list[str]:
        return [f"{get(r):.1f} ({1000 / get(r):.2f})" for r in runs]

    rows = [["decode only"] + cells(lambda r: r["stages"]["decode"]),
            ["inference only (letterbox + ORT)"] + cells(lambda r: r["stages"]["inference"]),
            ["post-processing only (+ RLE)"] + cells(lambda r: r["stages"]["postprocess"]),
            ["serial bound (no overlap)"] + cells(lambda r: r["serial"]),
            ["**end to end**"] + cells(lambda r: r["end_to_end"]),
            ["end to end / slowest stage"] + [f"**{r['efficiency']:.2f}** ({r['slowest']})" for r in runs],
            ["end to end / serial bound"] + [f"{r['vs_serial']:.2f}" for r in runs]]
    text = [f"{data['frames']} frames 1280×720 H.264 (synthetic seed 7), bundled model, JSONL sink, batch 1, "
            f"{data['cores']} CPU cores; inference alone (on the first 120 frames) and end to end alternate "
            f"{runs[0].get('repeat', 1)} times; the pair with the median ratio is shown.", "", table(head, rows), ""]
    best = max(runs, key=lambda r: r["efficiency"])
    short = [r for r in runs if r["efficiency"] < 0.95]
    text.append(f"Target: end to end ≥ 0.95 of the slowest stage: {best['efficiency']:.2f} with ORT {best['threads']} "
                f"thread(s){', met' if best['efficiency'] >= 0.95 else ', not met'}.")
    for r in short:
        busy = r["threads"] >= (data["cores"] or 1)
        why = (f"inference alone keeps all {data['cores']} cores busy with {r['threads']} ORT threads, so decoding and "
               "post-processing take their CPU time from it: the stages cannot overlap, and end to end lands "
               f"at {r['vs_serial']:.2f} of the serial bound" if busy else
               "the stages compete for cores (see the serial bound)")
        text.append(f"With ORT {r['threads']} thread(s) the figure is {r['efficiency']:.2f} because {why}. The 0.95 target "
                    "needs a spare core for decoding; on a GPU inference leaves the CPU to the other stages.")
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 2, 1], help="ONNX Runtime intra-op threads")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of inference alone and end to end")
    args = parser.parse_args(argv)
    data = measure(args.frames, tuple(args.threads), args.batch, args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
