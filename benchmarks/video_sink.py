"""The annotated video sink: what a 720p frame costs it, and what it costs the pipeline.

Per frame: the bundled model's results on a 1280×720 clip (tracked, ~8 objects a frame)
drawn with masks, boxes, labels and traces, then converted and encoded (x264,
``tune=zerolatency``), with the default preset (``ultrafast``) and with ``veryfast``;
median ms of each part. End to end: the demo's work (the clip through the bundled model,
tracker, JSONL sink) with and without the video sink, alternating ``--repeat`` times, with
ONNX Runtime's spinning off (vidpipe's default) and on (``allow_spinning: true``) in turn; the pair
with the median ratio is shown, and the CPU per frame.

    python benchmarks/video_sink.py [--frames 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bench_clip, table  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from sinks.config import VideoSinkConfig  # noqa: E402
from sinks.files import OutputFile  # noqa: E402
from sinks.video import AnnotatedVideoSink, _StreamWriter, yuv420_frame  # noqa: E402

NAME = "video"
TITLE = "Annotated video sink"


def _config(clip: Path, out: Path, video: bool, threads: int = 2, allow_spinning: bool = False) -> dict:
    sinks = [{"type": "jsonl", "path": str(out / "r.jsonl"), "mask_format": "rle", "overwrite": True}]
    if video:
        sinks.append({"type": "video", "path": str(out / "r.mp4"), "overwrite": True})
    return {"streams": [{"id": "s", "source": {"type": "file", "path": str(clip)}}],
            "model": {"intra_op_threads": threads, "allow_spinning": allow_spinning}, "batching": {"max_batch_size": 1},
            "tracker": {"type": "bytetrack"}, "sinks": sinks}


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def per_frame(clip: Path, out: Path, frames: int) -> list[dict]:
    """Each part's median ms on the clip's results, per x264 preset."""
    with Pipeline.from_config(_config(clip, out, False)) as p:
        results = list(p)[:frames]
    objects = statistics.mean(len(r.detections) for r in results)
    rows = []
    for preset in ("ultrafast", "veryfast"):
        sink = AnnotatedVideoSink(VideoSinkConfig(path=str(out / f"{preset}.mp4"), overwrite=True, preset=preset))
        writer = _StreamWriter(OutputFile(out / f"{preset}.mp4", True, "bench"), results[0].width, results[0].height,
                               30.0, 23, preset)
        draw, convert, total = [], [], []
        for r in results:
            t0 = time.perf_counter()
            image = sink.annotate(r)
            t1 = time.perf_counter()
            yuv420_frame(image[: writer.height, : writer.width])
            t2 = time.perf_counter()
            writer.write(image, r.pts)  # converts again, then encodes and muxes
            t3 = time.perf_counter()
            draw.append(t1 - t0)
            convert.append(t2 - t1)
            total.append((t1 - t0) + (t3 - t2))
        writer.close()
        size_kb = (out / f"{preset}.mp4").stat().st_size / 1024
        rows.append({"preset": preset, "objects": objects, "draw_ms": _median_ms(draw), "convert_ms": _median_ms(convert),
                     "encode_ms": _median_ms(total) - _median_ms(draw) - _median_ms(convert), "total_ms": _median_ms(total),
                     "kb_per_frame": size_kb / len(results)})
    return rows


def end_to_end(clip: Path, out: Path, repeat: int, threads: int = 2,
               spinning: tuple[bool, ...] = (False,)) -> dict[bool, dict]:
    """Alternating runs without and with the video sink, for each ONNX Runtime spinning
    setting in turn; per setting, the pair with the median ratio, every
    pair in run order, and the CPU each run used per frame (all threads: ONNX Runtime's,
    FFmpeg's, x264's)."""
    pairs: dict[bool, list[tuple[float, float]]] = {s: [] for s in spinning}
    cpu: dict[tuple[bool, bool], list[tuple[float, float]]] = {(s, v): [] for s in spinning for v in (False, True)}
    for _ in range(repeat):
        for spin in spinning:
            fps = {}
            for video in (False, True):
                t, c = time.perf_counter(), time.process_time()
                with Pipeline.from_config(_config(clip, out, video, threads, spin)) as p:
                    n = sum(1 for _ in p)
                wall, used = time.perf_counter() - t, time.process_time() - c
                fps[video] = n / wall
                cpu[spin, video].append((used / n * 1e3, used / wall))
            pairs[spin].append((fps[False], fps[True]))
    results = {}
    for spin in spinning:
        ordered = sorted(pairs[spin], key=lambda p: p[1] / p[0])
        without, with_video = ordered[len(ordered) // 2]
        runs = {"without": cpu[spin, False], "with": cpu[spin, True]}
        results[spin] = {
            "threads": threads, "allow_spinning": spin, "without_fps": without, "with_fps": with_video,
            "ratios": [w / o for o, w in ordered], "pairs_in_run_order": pairs[spin],
            "cpu_ms_per_frame": {k: statistics.median(c for c, _ in v) for k, v in runs.items()},
            "cores_busy": {k: statistics.median(b for _, b in v) for k, v in runs.items()}}
    return results


def measure(frames: int = 300, repeat: int = 3) -> dict:
    clip = bench_clip(frames)
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-video-") as tmp:
        out = Path(tmp)
        rows = per_frame(clip, out, frames)
        two = end_to_end(clip, out, repeat, spinning=(True, False))
        return {"frames": frames, "per_frame": rows, "end_to_end": two[True], "end_to_end_no_spin": two[False],
                "end_to_end_1_thread": end_to_end(clip, out, repeat, threads=1)[False], "cores": os.cpu_count()}


def render(data: dict) -> str:
    rows = [[r["preset"], f"{r['draw_ms']:.2f}", f"{r['convert_ms']:.2f}", f"{r['encode_ms']:.2f}", f"**{r['total_ms']:.2f}**",
             f"{r['kb_per_frame']:.1f}"] for r in data["per_frame"]]
    default = data["per_frame"][0]
    # The demo runs with spinning off ("end_to_end" is spinning on); results measured before that ran it on only.
    demo = data.get("end_to_end_no_spin") or data["end_to_end"]
    work = ("the demo's work (configs/demo.yaml: bundled model, ORT 2 threads with spinning off, tracker, JSONL "
            "sink)" if demo is not data["end_to_end"] else
            "the demo's work as it was then (bundled model, ORT 2 threads with its default spinning, tracker, JSONL sink)")
    ratio = demo["with_fps"] / demo["without_fps"]
    return "\n".join([
        f"{data['frames']} frames 1280×720 (synthetic seed 7), the bundled model's tracked results "
        f"({default['objects']:.1f} objects a frame) drawn with masks, boxes, labels and traces; x264 crf 23, "
        "`tune=zerolatency`. Median ms per frame.", "",
        table(["x264 preset", "draw", "convert to yuv420p", "encode + mux", "**sink total**", "KB/frame"], rows), "",
        f"Target ≤ 8 ms per 720p frame: {default['total_ms']:.2f} ms with the default preset (ultrafast), "
        f"{'met' if default['total_ms'] <= 8 else 'not met'}.", "",
        f"End to end, {work}: {demo['without_fps']:.1f} fps without the video sink, {demo['with_fps']:.1f} fps with "
        f"it: **{ratio:.2f}×** (the median of {len(demo['ratios'])} alternating pairs: {_pairs(demo)}; target ≥ 0.95, "
        f"{'met' if ratio >= 0.95 else 'not met'}).",
        *_cpu_lines(data, demo),
    ])


def _pairs(e: dict) -> str:
    return ", ".join(f"{r:.2f}" for r in e["ratios"])


def _median_run(e: dict) -> tuple[float, float]:
    """The median fps without and with the sink over a setting's runs."""
    pairs = e["pairs_in_run_order"]
    return statistics.median(o for o, _ in pairs), statistics.median(w for _, w in pairs)


def _cpu_lines(data: dict, demo: dict) -> list[str]:
    """Where the end-to-end ratio comes from: the CPU per frame, whether a core was free, and
    what ONNX Runtime's spinning changes."""
    if "cpu_ms_per_frame" not in demo:
        return []
    c, b = demo["cpu_ms_per_frame"], demo["cores_busy"]
    extra = c["with"] - c["without"]
    lines = ["", f"CPU per frame, all threads: {c['without']:.1f} ms without the sink, {c['with']:.1f} ms with it "
                 f"({b['without']:.2f} and {b['with']:.2f} of {data.get('cores', '?')} cores busy): the sink's "
                 f"{extra:.1f} ms (drawing in its thread, x264 in its own) is {extra / c['without']:.0%} of the "
                 f"pipeline's, a CPU ratio of {c['without'] / c['with']:.2f} against the fps ratio's "
                 f"{demo['with_fps'] / demo['without_fps']:.2f}."]
    spin = data["end_to_end"]
    if spin is not demo:
        (off_fps, with_off), (on_fps, with_on) = (_median_run(e) for e in (demo, spin))
        rs = spin["with_fps"] / spin["without_fps"]
        cs = spin["cpu_ms_per_frame"]
        lines.append(
            f"With spinning on instead (`allow_spinning: true`, ONNX Runtime's own default; runs alternating with the ones above): "
            f"{spin['without_fps']:.1f} fps without the sink, {spin['with_fps']:.1f} with it: **{rs:.2f}×** (pairs: "
            f"{_pairs(spin)}); CPU per frame {cs['without']:.1f} and {cs['with']:.1f} ms. Without the sink, the median "
            f"run: {off_fps:.1f} fps with spinning off, {on_fps:.1f} with it, on {c['without'] / cs['without']:.2f}× "
            f"the CPU per frame. With the sink, the median run: {with_off:.1f} fps with spinning off, {with_on:.1f} "
            "with it.")
    one = data.get("end_to_end_1_thread")
    if one:
        r1 = one["with_fps"] / one["without_fps"]
        lines.append(f"With ORT on 1 thread (no pool threads, so nothing spins), a core has room: "
                     f"{one['without_fps']:.1f} fps without, {one['with_fps']:.1f} with the sink: **{r1:.2f}×** "
                     f"(pairs: {_pairs(one)}; {one['cores_busy']['without']:.2f} and {one['cores_busy']['with']:.2f} "
                     "cores busy).")
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    data = measure(args.frames, args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
