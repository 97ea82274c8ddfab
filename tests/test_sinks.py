"""Annotated video, mask images, callbacks, output formats, and sink failure isolation."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline import Pipeline
from pipeline.vision import rle
from sinks.jsonl import JsonlSink

REPO = Path(__file__).resolve().parents[1]


def test_video_masks_and_callback_sinks(small_clip, tmp_path, monkeypatch):
    import tests.test_sinks as me

    me.SEEN = []
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}],
           "model": {"intra_op_threads": 2}, "tracker": {"type": "bytetrack"},
           "sinks": [{"type": "video", "path": str(tmp_path / "{stream}.mp4")},
                     {"type": "masks", "path": str(tmp_path / "masks" / "{stream}" / "{frame:04d}.png")},
                     {"type": "callback", "target": "tests.test_sinks:remember"}]}
    Pipeline.from_config(cfg).run(handle_signals=False)
    with av.open(str(tmp_path / "cam0.mp4")) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) == 40 and frames[0].shape == (360, 640, 3)
    pngs = sorted((tmp_path / "masks" / "cam0").glob("*.png"))
    assert len(pngs) == 40
    assert len(me.SEEN) == 40
    last = me.SEEN[-1]
    png = cv2.imread(str(pngs[-1]), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(png)) <= {0, 255}
    assert np.array_equal(png > 0, last.detections.full_masks().any(axis=0))
    # The annotation drew something where the detections are.
    if len(last.detections):
        with av.open(str(small_clip)) as c:
            raw = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)][-1]
        assert np.abs(frames[-1].astype(int) - raw.astype(int)).mean() > 1.0


SEEN: list = []


def remember(result) -> None:
    SEEN.append(result)


def test_sigterm_mid_run_leaves_a_playable_mp4(heldout_clip, tmp_path):
    out = tmp_path / "annotated.mp4"
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"""
streams: [{{id: cam0, source: {{type: file, path: "{heldout_clip[0]}"}}}}]
model: {{intra_op_threads: 1}}
sinks: [{{type: video, path: "{out}"}}, {{type: jsonl, path: "{tmp_path / 'r.jsonl'}"}}]
""")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(cfg), "-q"], cwd=REPO,
                            stderr=subprocess.PIPE, text=True)
    try:
        jsonl = tmp_path / "r.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 8):
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)  # polling a file another process writes
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143  # 128 + SIGTERM: the drain finished, the exit code says why it stopped
    written = len(jsonl.read_text().splitlines())
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert 8 <= n < 300 and n == written


def test_output_formats(small_clip, tmp_path):
    outs = {f: tmp_path / f"{f}.jsonl" for f in ("vidpipe", "roboflow", "instill")}
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}],
           "model": {"intra_op_threads": 2},
           "sinks": [{"type": "jsonl", "path": str(outs["vidpipe"])},
                     {"type": "jsonl", "path": str(outs["roboflow"]), "format": "roboflow", "mask_format": "polygon"},
                     {"type": "jsonl", "path": str(outs["instill"]), "format": "instill"}]}
    Pipeline.from_config(cfg).run(handle_signals=False)
    recs = {f: [json.loads(x) for x in p.read_text().splitlines()] for f, p in outs.items()}
    frame = next(i for i, r in enumerate(recs["vidpipe"]) if r["detections"])
    d = recs["vidpipe"][frame]["detections"][0]
    p = recs["roboflow"][frame]["predictions"][0]
    o = recs["instill"][frame]["objects"][0]
    b = d["bounding-box"]
    assert recs["roboflow"][frame]["image"] == {"width": 640, "height": 360}
    assert abs(p["x"] - (b["left"] + b["width"] / 2)) <= 0.011 and abs(p["width"] - b["width"]) <= 0.021
    assert p["class"] == d["category"] and p["confidence"] == d["score"]
    assert {"detection_id", "class_id", "points"} <= set(p) and len(p["points"]) >= 3
    assert o["bounding-box"] == b and o["category"] == d["category"] and o["score"] == d["score"]
    assert np.array_equal(rle.decode({"size": [360, 640], "counts": o["rle"]}), rle.decode(d["rle"]))


def test_bitmask_and_polygon_mask_formats(small_clip, tmp_path):
    from sinks.subscriber import detections_from_record

    outs = {f: tmp_path / f"{f}.jsonl" for f in ("rle", "bitmask", "polygon")}
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}], "model": {"intra_op_threads": 2},
           "sinks": [{"type": "jsonl", "path": str(p), "mask_format": f} for f, p in outs.items()]}
    Pipeline.from_config(cfg).run(handle_signals=False)
    recs = {f: [json.loads(x) for x in p.read_text().splitlines()] for f, p in outs.items()}
    checked = 0
    for a, b, c in zip(recs["rle"], recs["bitmask"], recs["polygon"]):
        da, db = detections_from_record(a), detections_from_record(b)
        for ma, mb in zip(da.masks, db.masks):
            assert np.array_equal(ma, mb)
            checked += 1
        assert all("polygon" in d and d["polygon"] for d in c["detections"])
    assert checked > 20


def test_a_failing_sink_does_not_stop_the_others(small_clip, tmp_path, monkeypatch):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    original = JsonlSink.write

    def write(self, result):
        if self.path == bad and result.frame_index >= 5:
            raise OSError("disk full")
        original(self, result)

    monkeypatch.setattr(JsonlSink, "write", write)
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}],
           "model": {"intra_op_threads": 2},
           "sinks": [{"type": "jsonl", "path": str(good)}, {"type": "jsonl", "path": str(bad)}]}
    pipeline = Pipeline.from_config(cfg)
    summary = pipeline.run(handle_signals=False)
    assert len(good.read_text().splitlines()) == 40
    assert len(bad.read_text().splitlines()) == 5
    assert summary["stages"][f"sink:jsonl:{bad.name}"]["errors"] == 35
    assert summary["errors"] == [f"sink jsonl:{bad.name} failed 35 of 40 results: disk full"]
    cfg["sinks"] = [{**sink, "overwrite": True} for sink in cfg["sinks"]]  # the second run replaces the first's files
    cfg["sinks"][1]["fail_fast"] = True
    import pytest

    from pipeline.core.errors import StageError

    with pytest.raises(StageError, match="disk full"):
        Pipeline.from_config(cfg).run(handle_signals=False)


def test_a_sink_that_cannot_finish_its_stream_fails_alone(small_clip, tmp_path, monkeypatch):
    """A video that cannot be finalised (disk full at the end) is that sink's failure: the
    others' results are whole, the run ends, the summary says what was not finished."""
    from sinks.video import AnnotatedVideoSink

    def end_stream(self, eos):
        raise OSError("no space left to finalise")

    monkeypatch.setattr(AnnotatedVideoSink, "end_stream", end_stream)
    good = tmp_path / "good.jsonl"
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}],
           "model": {"intra_op_threads": 2},
           "sinks": [{"type": "jsonl", "path": str(good)}, {"type": "video", "path": str(tmp_path / "{stream}.mp4")}]}
    summary = Pipeline.from_config(cfg).run(handle_signals=False)
    assert len(good.read_text().splitlines()) == 40
    assert summary["errors"] == ["sink video:{stream}.mp4 failed 1 end(s) of stream: no space left to finalise"]
