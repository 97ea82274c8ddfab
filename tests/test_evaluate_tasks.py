"""`vidpipe eval` on keypoints (OKS mAP) and classifications: hand-built ground truth and
results with known answers, OKS checked against an independent NumPy implementation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.app.cli import main as cli_main
from pipeline.app.evaluate import evaluate
from pipeline.app.evaluate_keypoints import COCO_KEYPOINTS, keypoint_oks
from pipeline.core.errors import VidpipeError
from pipeline.wire.parse import parse_record, read_records

REPO = Path(__file__).resolve().parents[1]
NAMES = ["centre", "top", "right", "bottom", "left"]
SKELETON = [[1, 2], [1, 3], [1, 4], [1, 5]]
THRESHOLDS = np.linspace(0.5, 0.95, 10)


def numpy_oks(gt_kp: list[float], dt_xy: np.ndarray, area: float, sigmas: np.ndarray) -> float:
    """COCO's OKS, written out: mean over labelled keypoints of exp(-d² / (2 s² κ²)), s² the
    object's area, κ = 2σ."""
    g = np.asarray(gt_kp, np.float64).reshape(-1, 3)
    labelled = g[:, 2] > 0
    d2 = ((np.asarray(dt_xy, np.float64) - g[:, :2]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * area * (2 * sigmas) ** 2))[labelled].mean())


def _diamond(cx: float, cy: float, r: float, hidden: int | None = None, outside: int | None = None) -> list[float]:
    """The five keypoints of a diamond as COCO's flat [x, y, v] list."""
    pts = [(cx, cy), (cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    out: list[float] = []
    for k, (x, y) in enumerate(pts):
        out += [0, 0, 0] if k == outside else [x, y, 1 if k == hidden else 2]
    return out


def _ann(ann_id: int, image_id: int, cat: int, kp: list[float] | None, cx: float, cy: float, r: float,
         area: float | None = None) -> dict:
    a = {"id": ann_id, "image_id": image_id, "category_id": cat, "track_id": ann_id, "iscrowd": 0,
         "bbox": [cx - r, cy - r, 2 * r, 2 * r], "area": area if area is not None else 2 * r * r}
    if kp is not None:
        a["keypoints"], a["num_keypoints"] = kp, sum(1 for v in kp[2::3] if v > 0)
    return a


def _gt(annotations: list[dict], frames: int = 3, keypoints: list[str] | None = NAMES) -> dict:
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(["circle", "rectangle", "triangle"])]
    if keypoints:
        for c in cats:
            c.update(keypoints=list(keypoints), skeleton=SKELETON)
    return {"images": [{"id": i + 10, "frame_index": i, "width": 640, "height": 360} for i in range(frames)],
            "annotations": annotations, "categories": cats}


def _pose_gt() -> dict:
    """Three frames: two objects in frames 0 and 1 (one with a hidden keypoint, one with a
    keypoint outside the frame), one in frame 2."""
    return _gt([_ann(1, 10, 1, _diamond(100, 100, 40, hidden=2), 100, 100, 40),
                _ann(2, 10, 2, _diamond(300, 200, 30, outside=4), 300, 200, 30),
                _ann(3, 11, 1, _diamond(110, 100, 40), 110, 100, 40),
                _ann(4, 11, 2, _diamond(310, 200, 30), 310, 200, 30),
                _ann(5, 12, 3, _diamond(500, 150, 50), 500, 150, 50)])


def _detection(a: dict, names: dict[int, str], fmt: str, shift: float = 0.0, order: list[int] | None = None) -> dict:
    """A result detection exactly at annotation ``a`` (keypoints moved ``shift`` px right)."""
    x, y, w, h = a["bbox"]
    kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)[order or slice(None)]
    pts = [[px + shift, py, 0.9] for px, py, _ in kp.tolist()]
    box = {"left": x, "top": y, "width": w, "height": h}
    if fmt == "roboflow":
        return {"x": x + w / 2, "y": y + h / 2, "width": w, "height": h, "confidence": 0.8, "class": names[a["category_id"]],
                "keypoints": [{"x": px, "y": py, "confidence": c, "class_id": k} for k, (px, py, c) in enumerate(pts)]}
    if fmt == "instill":
        return {"bounding-box": box, "score": 0.8, "category": names[a["category_id"]],
                "keypoints": [{"x": px, "y": py, "v": c} for px, py, c in pts]}
    return {"bounding-box": box, "score": 0.8, "category": names[a["category_id"]], "keypoints": pts}


def _pose_results(gt: dict, fmt: str = "vidpipe", shift: float = 0.0, skip: set[int] = frozenset(),
                  keypoint_names: list[str] | None = NAMES, order: list[int] | None = None) -> list[dict]:
    names = {c["id"]: c["name"] for c in gt["categories"]}
    key = {"vidpipe": "detections", "roboflow": "predictions", "instill": "objects"}[fmt]
    out = []
    for img in gt["images"]:
        dets = [_detection(a, names, fmt, shift, order) for a in gt["annotations"]
                if a["image_id"] == img["id"] and a["id"] not in skip]
        rec = {"schema": "vidpipe.result/1", "format": fmt, "stream": "s", "frame": img["frame_index"], key: dets}
        if keypoint_names:
            rec["keypoint_names"] = keypoint_names
        out.append(rec)
    return out


def _write(tmp_path: Path, gt: dict, records: list[dict]) -> tuple[Path, Path]:
    gt_path, res = tmp_path / "gt.json", tmp_path / "r.jsonl"
    gt_path.write_text(json.dumps(gt))
    res.write_text("".join(json.dumps(r) + "\n" for r in records))
    return res, gt_path


@pytest.mark.parametrize("fmt", ["vidpipe", "roboflow", "instill"])
def test_perfect_keypoints_score_one(tmp_path, fmt):
    gt = _pose_gt()
    m = evaluate(*_write(tmp_path, gt, _pose_results(gt, fmt)))
    assert (m["keypoint_map50_95"], m["keypoint_map50"], m["keypoint_map75"]) == (1.0, 1.0, 1.0)
    assert m["keypoint_names"] == NAMES and m["keypoint_sigmas"] == [0.05] * 5
    assert m["box_map50"] == 1.0 and m["mask_map50"] is None and "no masks" in m["note"]


def test_keypoints_matched_by_name_or_position(tmp_path):
    gt = _pose_gt()
    order = [2, 0, 4, 1, 3]  # the results list the keypoints in another order, with their names
    by_name = _pose_results(gt, keypoint_names=[NAMES[i] for i in order], order=order)
    assert evaluate(*_write(tmp_path, gt, by_name))["keypoint_map50_95"] == 1.0
    unnamed = _pose_results(gt, keypoint_names=None)  # no names: by position
    assert evaluate(*_write(tmp_path, gt, unnamed))["keypoint_map50_95"] == 1.0
    shuffled_unnamed = _pose_results(gt, keypoint_names=None, order=order)
    assert evaluate(*_write(tmp_path, gt, shuffled_unnamed))["keypoint_map50_95"] < 0.5


def test_shifted_keypoints_score_what_oks_says(tmp_path):
    """One object of area 3200, every keypoint moved d px: OKS = exp(-d² / (2·3200·(2·0.05)²)),
    0.37, 0.57, 0.78 for d = 8, 6, 4; mAP@[.5:.95] is the share of thresholds it passes."""
    a = _ann(1, 10, 1, _diamond(100, 100, 40), 100, 100, 40)
    gt = _gt([a], frames=1)
    for shift in (8.0, 6.0, 4.0):
        oks = numpy_oks(a["keypoints"], np.reshape(a["keypoints"], (-1, 3))[:, :2] + [shift, 0], a["area"], np.full(5, 0.05))
        assert not np.isclose(THRESHOLDS, oks, atol=1e-3).any()  # no threshold on a knife edge
        m = evaluate(*_write(tmp_path, gt, _pose_results(gt, shift=shift)))
        assert m["keypoint_map50_95"] == pytest.approx(np.mean(THRESHOLDS <= oks), abs=1e-4)
        assert m["keypoint_map50"] == float(oks >= 0.5) and m["keypoint_map75"] == float(oks >= 0.75)
    assert 0 < np.mean(THRESHOLDS <= oks) < 1  # the last shift lands between thresholds


def test_missing_detections_lower_the_map(tmp_path):
    gt = _pose_gt()
    m = evaluate(*_write(tmp_path, gt, _pose_results(gt, skip={3, 4, 5})))  # frames 1 and 2 missed
    # Class 1 (circle): 1 of 2 found, precision 1 up to recall 0.5 → 51 of COCO's 101 recall
    # points; class 2 the same; class 3 (triangle): 0 of 1 → 0. Mean: (2 · 51/101) / 3.
    assert m["keypoint_map50"] == pytest.approx(2 * 51 / 101 / 3, abs=1e-4)


def test_oks_matches_an_independent_numpy_oks():
    """One pair with COCO's 17 keypoints (so COCO's sigmas), one keypoint hidden and one not
    labelled, uneven offsets: pycocotools' OKS as vidpipe drives it equals the formula."""
    rng = np.random.default_rng(3)
    g = np.column_stack([rng.uniform(50, 150, 17), rng.uniform(50, 250, 17), np.full(17, 2.0)])
    g[4, 2] = 1.0
    g[9] = 0.0
    gt_kp = g.ravel().tolist()
    dt = g[:, :2] + rng.normal(0, 3, (17, 2))
    gt = _gt([_ann(1, 10, 1, gt_kp, 100, 150, 100, area=7000.0)], frames=1, keypoints=list(COCO_KEYPOINTS))
    rec = {"schema": "vidpipe.result/1", "stream": "s", "frame": 0, "keypoint_names": list(COCO_KEYPOINTS),
           "detections": [{"bounding-box": {"left": 0, "top": 0, "width": 10, "height": 10}, "score": 0.5,
                           "category": "circle", "keypoints": [[x, y, 0.9] for x, y in dt.tolist()]}]}
    coco_sigmas = np.array([.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062,
                            .107, .107, .087, .087, .089, .089])
    expected = numpy_oks(gt_kp, dt, 7000.0, coco_sigmas)
    ours = keypoint_oks(gt, [parse_record(rec)])[(10, 1)]
    assert ours.shape == (1, 1) and ours[0, 0] == pytest.approx(expected, rel=1e-9)
    assert 0.2 < expected < 0.99  # a pair that tests something
    # --kpt-sigma: one sigma for all
    ours = keypoint_oks(gt, [parse_record(rec)], sigma=0.1)[(10, 1)]
    assert ours[0, 0] == pytest.approx(numpy_oks(gt_kp, dt, 7000.0, np.full(17, 0.1)), rel=1e-9)


def test_keypoint_layouts_that_do_not_correspond_are_errors(tmp_path):
    gt = _pose_gt()
    with pytest.raises(VidpipeError, match=r"results frame 0: the results have 4 keypoints per detection, "
                                           r"the ground truth 5 \(centre, top, right, bottom, left\)"):
        evaluate(*_write(tmp_path, gt, _pose_results(gt, keypoint_names=None, order=[0, 1, 2, 3])))
    with pytest.raises(VidpipeError, match=r"the results name keypoints \['centre', 'top', 'right', 'bottom', 'tip'\]"):
        evaluate(*_write(tmp_path, gt, _pose_results(gt, keypoint_names=NAMES[:4] + ["tip"])))
    gt["categories"][2]["keypoints"] = NAMES[:4]
    with pytest.raises(VidpipeError, match="categories name different keypoints"):
        evaluate(*_write(tmp_path, gt, _pose_results(_pose_gt())))


def test_keypoints_against_a_ground_truth_without_them_score_boxes(tmp_path):
    gt = _pose_gt()
    plain = _gt([{k: v for k, v in a.items() if k not in ("keypoints", "num_keypoints")} for a in gt["annotations"]],
                keypoints=None)
    m = evaluate(*_write(tmp_path, plain, _pose_results(gt)))
    assert m["keypoint_map50"] is None and "names no keypoints" in m["note"] and m["box_map50"] == 1.0


# -- classification ------------------------------------------------------------------------


def _classes_gt() -> dict:
    """Frame labels: 0 rectangle (the larger of two), 1 triangle, 2 none, 3 circle, 4 rectangle."""
    return _gt([_ann(1, 10, 1, None, 50, 50, 10, area=100), _ann(2, 10, 2, None, 200, 50, 20, area=400),
                _ann(3, 11, 3, None, 50, 50, 10),
                _ann(4, 13, 1, None, 50, 50, 30, area=900), _ann(5, 13, 2, None, 200, 50, 40, area=50),
                _ann(6, 14, 2, None, 50, 50, 10)], frames=5, keypoints=None)


def _classification(frame: int, preds: list[tuple[str, float]], fmt: str) -> dict:
    p = [{"class": c, "class_id": i, "confidence": s} for i, (c, s) in enumerate(preds)]
    best = max(p, key=lambda x: x["confidence"])
    if fmt == "roboflow":
        return {"schema": "vidpipe.result/1", "format": fmt, "stream": "s", "frame": frame, "predictions": p,
                "top": best["class"], "confidence": best["confidence"]}
    return {"schema": "vidpipe.result/1", "stream": "s", "frame": frame, "detections": [],
            "classification": {"top": best["class"], "confidence": best["confidence"], "predictions": p}}


@pytest.mark.parametrize("fmt", ["vidpipe", "roboflow"])
def test_classification_top1_top5_known_mix(tmp_path, fmt):
    others = [("a", 0.5), ("b", 0.4), ("c", 0.3), ("d", 0.2), ("e", 0.1)]
    records = [
        _classification(0, [("circle", 0.2), ("rectangle", 0.7)], fmt),  # sent unsorted: top-1 right
        _classification(1, [("circle", 0.6), ("triangle", 0.3)], fmt),  # top-5 right only
        _classification(2, [("circle", 0.9)], fmt),  # no object: skipped
        _classification(3, [*others, ("circle", 0.05)], fmt),  # sixth: wrong on both
        # frame 4 labelled, not answered: wrong
    ]
    m = evaluate(*_write(tmp_path, _classes_gt(), records))
    assert (m["top1_accuracy"], m["top5_accuracy"]) == (0.25, 0.5)
    assert (m["labelled_frames"], m["unanswered_frames"], m["frames_without_object"]) == (4, 1, 1)
    assert "box_map50" not in m and "keypoint_map50" not in m


def test_nothing_to_score_is_one_clear_line(tmp_path, capsys):
    res, gt_path = _write(tmp_path, _gt([], frames=2, keypoints=None), [_classification(0, [("circle", 0.9)], "vidpipe")])
    assert cli_main(["eval", "--results", str(res), "--gt", str(gt_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("vidpipe: error: ")
    assert "nothing to score" in err and "the results carry classifications" in err
    assert "the ground truth has no annotations" in err
    semantic = {"schema": "vidpipe.result/1", "stream": "s", "frame": 0, "detections": [], "semantic": []}
    res, gt_path = _write(tmp_path, _pose_gt(), [semantic])
    with pytest.raises(VidpipeError, match="the results carry semantic segments; the ground truth has objects "
                                           "and keypoints to score"):
        evaluate(res, gt_path)


def test_eval_cli_scores_keypoints_with_a_sigma(tmp_path):
    a = _ann(1, 10, 1, _diamond(100, 100, 40), 100, 100, 40)
    gt = _gt([a], frames=1)
    res, gt_path = _write(tmp_path, gt, _pose_results(gt, shift=10.0))
    assert read_records(res)[0].detections.keypoints.shape == (1, 5, 3)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "eval", "--results", str(res), "--gt", str(gt_path),
                           "--kpt-sigma", "0.1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    oks = numpy_oks(a["keypoints"], np.reshape(a["keypoints"], (-1, 3))[:, :2] + [10, 0], a["area"], np.full(5, 0.1))
    assert m["keypoint_sigmas"] == [0.1] * 5
    assert m["keypoint_map50_95"] == pytest.approx(np.mean(THRESHOLDS <= oks), abs=1e-4)
    assert 0 < m["keypoint_map50_95"] < 1  # 10 px at sigma 0.1: OKS between thresholds
    bad = subprocess.run([sys.executable, "-m", "pipeline", "eval", "--results", str(res), "--gt", str(gt_path),
                          "--kpt-sigma", "0"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == "vidpipe: error: --kpt-sigma: expected a positive number, got 0.0"
