"""A real encoded video (and an image folder) through the whole pipeline."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np

from pipeline import Pipeline
from pipeline.vision import rle


def _cfg(source: dict, out=None, **extra) -> dict:
    cfg = {"streams": [{"id": "cam0", "source": source}], "model": {"intra_op_threads": 2}}
    if out is not None:
        cfg["sinks"] = [{"type": "jsonl", "path": str(out)}]
    cfg.update(extra)
    return cfg


def test_file_to_jsonl_one_whole_line_per_frame(small_clip, tmp_path):
    out = tmp_path / "r.jsonl"
    summary = Pipeline.from_config(_cfg({"type": "file", "path": str(small_clip)}, out)).run()
    lines = out.read_text().splitlines()
    assert len(lines) == summary["frames"] == summary["results"] == 40
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(40))
    r = records[5]
    assert r["schema"] == "vidpipe.result/1" and r["stream"] == "cam0"
    assert (r["width"], r["height"]) == (640, 360)
    assert r["pts"] == round(5 / 30, 6)
    assert set(r["timings"]) >= {"decode", "queue", "inference", "postprocess"}
    assert r["latency_ms"] > 0
    dets = [d for rec in records for d in rec["detections"]]
    assert dets, "the bundled model finds shapes in the clip"
    d = dets[0]
    assert set(d) >= {"bounding-box", "category", "class_id", "score", "track_id", "rle"}
    mask = rle.decode(d["rle"])
    assert mask.shape == (360, 640) and mask.any()
    b = d["bounding-box"]
    ys, xs = np.nonzero(mask)
    assert xs.min() >= int(b["left"]) and xs.max() < b["left"] + b["width"] + 1
    assert summary["drops"] == {}
    assert summary["stages"]["decoder:cam0"]["items"] == 40


def test_image_folder_iterated_in_order(small_clip, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    with av.open(str(small_clip)) as c:
        for i, f in zip(range(6), c.decode(video=0)):
            cv2.imwrite(str(folder / f"img_{i:03d}.png"), f.to_ndarray(format="bgr24"))
    (folder / "notes.txt").write_text("not an image")
    with Pipeline.from_config(_cfg({"type": "images", "path": str(folder)})) as p:
        results = list(p)
    assert [r.frame_index for r in results] == list(range(6))
    assert all(r.width == 640 and r.height == 360 for r in results)
    sv_dets = results[0].to_supervision()
    assert len(sv_dets) == len(results[0].detections)
    if len(sv_dets):
        assert sv_dets.mask.shape[1:] == (360, 640)


def test_synthetic_source_and_batching_keep_order(tmp_path):
    cfg = {
        "streams": [{"id": f"s{i}", "source": {"type": "synthetic", "seed": i, "frames": 12, "width": 320, "height": 180}}
                    for i in range(3)],
        "batching": {"max_batch_size": 4, "max_wait_ms": 20},
    }
    pipeline = Pipeline.from_config(cfg)
    seen: dict[str, list[int]] = {}
    with pipeline:
        for r in pipeline:
            seen.setdefault(r.stream_id, []).append(r.frame_index)
    assert seen == {f"s{i}": list(range(12)) for i in range(3)}
    assert pipeline.inference.batches < 36, "frames were batched"


def test_breaking_out_of_iteration_stops_everything(small_clip):
    pipeline = Pipeline.from_config(_cfg({"type": "file", "path": str(small_clip)}))
    with pipeline:
        for r in pipeline:
            if r.frame_index == 3:
                break
    assert not any(s.alive for s in pipeline.stages)
