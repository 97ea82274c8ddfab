"""vidpipe beside its peers: the same clip and the same ONNX model through vidpipe, Ultralytics'
predictor and Roboflow ``inference``'s InferencePipeline, end to end, side by side in one run.

The clip: ``--frames`` frames 1280×720 H.264 of the synthetic world (seed 7). The model: the
bundled ``shapes-yolov8seg.onnx``. Every row runs from the encoded file to every frame's
results in memory or a sink, after its model has loaded and warmed up, with ONNX Runtime's
intra-op pool at ``--threads`` and the same thresholds (confidence 0.4, IoU 0.5, 300
detections at most):

1. ``vidpipe run``: ``accurate`` masks (decoded at full resolution), a JSON Lines sink with
   each mask as COCO RLE of the full frame; no tracker (the peers do not track). Twice: with
   its defaults (``model.rect``: the 16:9 frames go in at 640×384, as Ultralytics feeds
   them) and with ``model.rect: false`` (640×640, as Roboflow feeds them).
2. Ultralytics' predictor, ``predict(clip, stream=True, retina_masks=True)``: masks at the
   source resolution.
3. The same with its default masks, at the letterbox's resolution.
4. Row 2 with ``rect=False``: Ultralytics letterboxes video to 384×640 by default (the model's
   height and width are dynamic), vidpipe and Roboflow to 640×640; this row runs Ultralytics
   on vidpipe's input size, to tell the pipeline apart from the input size (not a target).
5. Roboflow's InferencePipeline (``init_with_custom_logic``) running the model through
   inference's own YOLOv8-seg model class: its letterbox, NMS, ``process_mask_accurate`` and
   polygons in frame pixels.

Each peer runs in its own throwaway virtualenv as a subprocess (``benchmarks/peer_*.py``,
one JSON line back); a peer whose virtualenv is missing is skipped with the make target that
builds it. The ratio is vidpipe's fps (defaults) over the peer's (target ≥ 2.5× against rows 2
and 5); beside it, the ratio of the vidpipe row whose network input is the peer's.
With ``--repeat`` > 1 the rows run in rounds (all five once per round) and each row shows
its median; ``vidpipe bench peers`` runs 3 rounds, about 8 minutes on a 2-core machine.

    make ultralytics-venv rfinference-venv      # once: the peers' virtualenvs
    python benchmarks/peers.py [--frames 300] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, bench_clip, table  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402

NAME = "peers"
TITLE = "vidpipe beside Ultralytics and Roboflow InferencePipeline"
CONFIDENCE, IOU = 0.4, 0.5
TARGET = 2.5
PEER_TIMEOUT_S = 900


def _peer(key: str, label: str, venv: str, target: str, script: str, *args: str) -> dict:
    return {"key": key, "label": label, "venv": venv, "make": target, "script": script, "args": list(args)}


PEERS = (
    _peer("ultralytics-retina", "Ultralytics predictor, `retina_masks=True`", ".venv-ultralytics", "ultralytics-venv",
          "benchmarks/peer_ultralytics.py", "--retina"),
    _peer("ultralytics", "Ultralytics predictor, default masks", ".venv-ultralytics", "ultralytics-venv",
          "benchmarks/peer_ultralytics.py"),
    _peer("ultralytics-retina-square", "Ultralytics predictor, `retina_masks=True`, `rect=False`", ".venv-ultralytics",
          "ultralytics-venv", "benchmarks/peer_ultralytics.py", "--retina", "--square"),
    _peer("rfinference", "Roboflow InferencePipeline, inference's YOLOv8-seg (accurate)", ".venv-rfinference",
          "rfinference-venv", "benchmarks/peer_rfinference.py"),
)
RATIO_KEYS = ("ultralytics-retina", "rfinference")  # the acceptance ratios


def _vidpipe_config(clip: Path, out: Path, threads: int, rect: bool | None = None) -> dict:
    post = {"confidence": CONFIDENCE, "iou_threshold": IOU, "max_detections": 300, "mask_decode_mode": "accurate"}
    return {"streams": [{"id": "peers", "source": {"type": "file", "path": str(clip)}}],
            "model": {"intra_op_threads": threads, "rect": rect, "postprocess": post}, "batching": {"max_batch_size": 1},
            "sinks": [{"type": "jsonl", "path": str(out), "mask_format": "rle", "overwrite": True}]}


def run_vidpipe(clip: Path, threads: int, rect: bool | None = None) -> dict:
    """What ``vidpipe run`` does with this config: the model loads (and warms up) in
    ``from_config``; the clock runs over ``run()``, from opening the file to the last line."""
    with tempfile.TemporaryDirectory(prefix="vidpipe-bench-peers-") as tmp:
        out = Path(tmp) / "results.jsonl"
        pipeline = Pipeline.from_config(_vidpipe_config(clip, out, threads, rect))
        h, w = pipeline.model.preprocess.batch_input_hw([(720, 1280)])
        t = time.perf_counter()
        pipeline.run(handle_signals=False)
        seconds = time.perf_counter() - t
        records = [json.loads(line) for line in out.read_text().splitlines()]
    detections = sum(len(r["detections"]) for r in records)
    key, label = ("vidpipe", "vidpipe run, accurate masks, JSONL sink (RLE)") if rect is None else \
        ("vidpipe-square", "the same, `model.rect: false`")
    return {"key": key, "label": label, "frames": len(records),
            "seconds": seconds, "fps": len(records) / seconds, "detections_per_frame": detections / max(len(records), 1),
            "input": f"{w}×{h}", "masks": "1280×720 (RLE)", "ort_threads": threads}


def run_peer(peer: dict, clip: Path, threads: int) -> dict:
    """One peer in its own virtualenv; skipped (with the make target) when that is missing."""
    python = ROOT / peer["venv"] / "bin" / "python"
    base = {"key": peer["key"], "label": peer["label"]}
    if not python.exists():
        return {**base, "skipped": f"no {peer['venv']}: `make {peer['make']}` builds it"}
    cmd = [str(python), str(ROOT / peer["script"]), "--clip", str(clip), "--model", str(default_model_path()),
           "--threads", str(threads), "--conf", str(CONFIDENCE), "--iou", str(IOU), *peer["args"]]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=PEER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {**base, "skipped": f"{peer['script']} ran past {PEER_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {**base, "skipped": f"{peer['script']} failed (exit {proc.returncode}): {tail[0][:200]}"}
    return {**base, **json.loads(lines[-1])}


def _median_row(runs: list[dict]) -> dict:
    """The run with the median fps, with every run's fps beside it."""
    done = [r for r in runs if "skipped" not in r]
    if not done:
        return runs[0]
    done.sort(key=lambda r: r["fps"])
    return {**done[len(done) // 2], "fps_runs": [r["fps"] for r in runs if "skipped" not in r]}


def measure(frames: int = 300, threads: int = 2, repeat: int = 1) -> dict:
    clip = bench_clip(frames)
    load_before = os.getloadavg()[0]  # other work on the cores lowers vidpipe's threaded figure most
    runs: dict[str, list[dict]] = {"vidpipe": [], "vidpipe-square": [], **{p["key"]: [] for p in PEERS}}
    for _ in range(repeat):  # rounds: every row once per round, side by side in time
        runs["vidpipe"].append(run_vidpipe(clip, threads))
        runs["vidpipe-square"].append(run_vidpipe(clip, threads, rect=False))
        for peer in PEERS:
            row = run_peer(peer, clip, threads)
            runs[peer["key"]].append(row)
            if "skipped" in row:
                print(f"{peer['key']}: skipped: {row['skipped']}", flush=True)
    rows = [_median_row(r) for r in runs.values()]
    vidpipe_fps = rows[0]["fps"]
    for row in rows[1:]:
        if "skipped" not in row:
            row["ratio"] = vidpipe_fps / row["fps"]
            same = next((v for v in rows[:2] if v["input"] == _describe(row)[0]), None)
            if same is not None and not row["key"].startswith("vidpipe"):
                row["same_input_ratio"] = same["fps"] / row["fps"]
    return {"frames": frames, "threads": threads, "repeat": repeat, "confidence": CONFIDENCE, "iou": IOU, "rows": rows,
            "loadavg": [load_before, os.getloadavg()[0]]}


def _shape(hw: list[int] | None) -> str:
    return f"{hw[1]}×{hw[0]}" if hw and len(hw) == 2 else "?"


def _describe(row: dict) -> tuple[str, str]:
    """What the network saw and what the masks came out as, from what the row reported."""
    if row["key"].startswith("vidpipe"):
        return row["input"], row["masks"]
    if row["key"].startswith("ultralytics"):
        inputs = ", ".join(f"{s[3]}×{s[2]}" for s in row.get("input_shapes", []))
        return inputs or "?", _shape(row.get("mask_shape"))
    size = row.get("input_size") or [0, 0]
    return f"{size[1]}×{size[0]}", f"polygons (masks {size[1]}×{size[0]}, accurate)"


def _versions(rows: list[dict]) -> list[str]:
    seen: dict[str, str] = {}
    for row in rows:
        if row.get("versions"):
            name = "Ultralytics venv" if row["key"].startswith("ultralytics") else "Roboflow venv"
            seen[name] = ", ".join(f"{k} {v}" for k, v in row["versions"].items())
    return [f"{name}: {text}." for name, text in seen.items()]


def _load(data: dict) -> list[str]:
    """The 1-minute load average before and after the run: whether other work shared the
    cores (it lowers vidpipe's threaded figure more than the peers' sequential ones)."""
    if "loadavg" not in data:
        return []
    before, after = data["loadavg"]
    return ["", f"1-minute load average {before:.1f} before the run, {after:.1f} after it."]


def render(data: dict) -> str:
    rows, lines = [], []
    for row in data["rows"]:
        if "skipped" in row:
            rows.append([row["label"], "", "", "", "skipped", "", "", ""])
            lines.append(f"- {row['label']}: skipped ({row['skipped']}).")
            continue
        seen, masks = _describe(row)
        runs = row.get("fps_runs", [])
        fps = f"{row['fps']:.1f}" + (f" ({', '.join(f'{f:.1f}' for f in runs)})" if len(runs) > 1 else "")
        ratio = "1" if row["key"] == "vidpipe" else f"**{row['ratio']:.2f}×**"
        same = f"{row['same_input_ratio']:.2f}×" if "same_input_ratio" in row else ""
        rows.append([row["label"], seen, masks, row["frames"], fps, ratio, same, f"{row['detections_per_frame']:.1f}"])
    verdicts = []
    by_key = {r["key"]: r for r in data["rows"]}
    for key in RATIO_KEYS:
        row = by_key.get(key, {})
        if "ratio" in row:
            verdicts.append(f"{row['label']}: {row['ratio']:.2f}× ({'met' if row['ratio'] >= TARGET else 'not met'})")
    rounds = f" ({data['repeat']} rounds, each row's median)" if data["repeat"] > 1 else ""
    return "\n".join([
        f"{data['frames']} frames 1280×720 H.264 (synthetic seed 7), the bundled `shapes-yolov8seg.onnx`, ONNX Runtime "
        f"{data['threads']} intra-op threads everywhere, confidence {data['confidence']}, IoU {data['iou']}. Each row end to end "
        "from the encoded file to every frame's results (after the model loaded and warmed up); each peer in its own "
        f"virtualenv, all in one run{rounds}.",
        "",
        table(["pipeline", "network input", "masks", "frames", "fps", "vidpipe ÷ this", "vidpipe at this input ÷ this",
               "detections/frame"], rows),
        "",
        f"Target vidpipe ≥ {TARGET}× each of these: " + ("; ".join(verdicts) if verdicts else "not measured (peers skipped)") + ".",
        "",
        "vidpipe (by default, `model.rect`) and Ultralytics (`rect`) letterbox a dynamic model's input to the smallest "
        "multiple of 32 that holds the frame; Roboflow feeds the model's 640×640. The `rect: false` rows run vidpipe "
        "and Ultralytics at 640×640 (not targets), so each peer is also compared at its own input size. Ultralytics' "
        "predictor runs decode, inference and post-processing one after another on one thread, vidpipe's stages are threads. "
        "Roboflow's row ends at polygons (what its responses carry), vidpipe's at RLE written to a file.",
        *_load(data),
        *([""] + lines if lines else []),
        "",
        *_versions(data["rows"]),
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads in every row")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all rows; each row shows its median")
    args = parser.parse_args(argv)
    data = measure(args.frames, args.threads, args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
