"""`vidpipe eval` on cases with known answers."""

from __future__ import annotations

import json

import pytest

from pipeline.app.cli import main as cli_main
from pipeline.app.evaluate import evaluate, mot_metrics

A, B, FAR = [0, 0, 10, 10], [50, 50, 60, 60], [200, 200, 210, 210]


def test_mot_metrics_known_answer():
    gt = [[(1, A), (2, B)]] * 4
    pred = [
        [(10, A), (20, B)],
        [(10, A), (20, B)],
        [(11, A)],  # identity switch on track 1, track 2 missed
        [(11, A), (20, B), (30, FAR)],  # one false positive
    ]
    m = mot_metrics(gt, pred)
    assert (m["false_negatives"], m["false_positives"], m["id_switches"], m["gt_objects"]) == (1, 1, 1, 8)
    assert m["mota"] == pytest.approx(1 - 3 / 8)
    # IDTP: track 1 ↔ id 10 (2 frames) or 11 (2), track 2 ↔ id 20 (3) = 5; IDF1 = 2·5 / (8 + 8).
    assert m["idf1"] == pytest.approx(10 / 16)


def test_perfect_tracking_scores_one():
    gt = [[(1, A), (2, B)]] * 3
    m = mot_metrics(gt, [[(7, A), (8, B)]] * 3)
    assert m["mota"] == 1.0 and m["idf1"] == 1.0 and m["id_switches"] == 0


def _records_from_gt(gt: dict, category_shift: int = 0, track_offset: int = 100) -> list[dict]:
    names = {c["id"]: c["name"] for c in gt["categories"]}
    ids = sorted(names)
    by_image: dict[int, list] = {img["id"]: [] for img in gt["images"]}
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        cat = ids[(ids.index(a["category_id"]) + category_shift) % len(ids)]
        by_image[a["image_id"]].append({
            "bounding-box": {"left": x, "top": y, "width": w, "height": h}, "category": names[cat],
            "class_id": cat - 1, "score": 0.9, "track_id": a["track_id"] + track_offset, "rle": a["segmentation"],
        })
    return [{"schema": "vidpipe.result/1", "stream": "s", "frame": img["frame_index"], "detections": by_image[img["id"]]}
            for img in gt["images"]]


def test_eval_perfect_and_wrong_class(tmp_path, gt_small):
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt_small))
    perfect = tmp_path / "perfect.jsonl"
    perfect.write_text("\n".join(json.dumps(r) for r in _records_from_gt(gt_small)) + "\n")
    m = evaluate(perfect, gt_path)
    assert m["mask_map50"] == 1.0 and m["box_map50"] == 1.0 and m["mask_map50_95"] == 1.0
    assert m["idf1"] == 1.0 and m["mota"] == 1.0 and m["id_switches"] == 0
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text("\n".join(json.dumps(r) for r in _records_from_gt(gt_small, category_shift=1)) + "\n")
    assert evaluate(wrong, gt_path)["mask_map50"] == 0.0


def test_eval_cli_prints_json_and_rejects_bad_files(tmp_path, gt_small, capsys):
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt_small))
    res = tmp_path / "r.jsonl"
    res.write_text("\n".join(json.dumps(r) for r in _records_from_gt(gt_small)) + "\n")
    assert cli_main(["eval", "--results", str(res), "--gt", str(gt_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"mask_map50", "mask_map50_95", "box_map50", "idf1", "mota", "id_switches"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema": "vidpipe.result/1"}\nnot json\n')
    assert cli_main(["eval", "--results", str(bad), "--gt", str(gt_path)]) == 2
    assert "bad.jsonl line 2: not JSON" in capsys.readouterr().err
