"""vidpipe's tracking metrics (pipeline/app/evaluate_tracks.py) against TrackEval, the
reference implementation, on the same ground truth and results: equal to 3 decimals.

The real clip through the whole pipeline is compared in tests/test_model.py; here the
ground truth is the crowded synthetic world and the results come from ByteTrack (classic
and with recovery) on noisy detections, plus hand-made identity errors."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.app.evaluate import mot_metrics
from pipeline.track.bytetrack import ByteTrack
from pipeline.track.config import CLASSIC_BYTETRACK as CLASSIC
from pipeline.track.config import TrackerConfig
from pipeline.vision.detections import Detections
from sources.worlds import make_scene
from tests.trackeval_ref import trackeval_metrics


@pytest.fixture(scope="module")
def crowded_gt() -> list:
    """150 frames of the crowded world (640×360): per frame (track id, xyxy)."""
    scene = make_scene(5, "crowded", 640, 360)
    frames = []
    for _ in range(150):
        _, labels = scene.step()
        frames.append([(o.track_id, [float(v) for v in o.xyxy]) for o in labels.objects])
    return frames


def _tracked(gt: list, config: TrackerConfig, seed: int) -> list:
    """The tracker's output on the GT boxes with jitter, 10 % misses and false positives."""
    rng = np.random.default_rng(seed)
    tracker = ByteTrack(config, fps=30)
    out = []
    for items in gt:
        boxes = np.array([b for _, b in items], np.float64).reshape(-1, 4)
        boxes = boxes[rng.random(len(boxes)) > 0.1]
        boxes = boxes + rng.normal(0, 2.0, boxes.shape)
        fp = rng.uniform(0, 560, (2, 2))
        boxes = np.concatenate([boxes, np.concatenate([fp, fp + 40], 1)]).astype(np.float32)
        scores = rng.uniform(0.3, 0.95, len(boxes)).astype(np.float32)
        dets = tracker.update(Detections(boxes, scores, np.zeros(len(boxes), np.int64), (360, 640)))
        out.append([(int(t), [float(v) for v in b]) for t, b in zip(dets.tracker_id, dets.xyxy) if t >= 0])
    return out


def _assert_agree(gt: list, pred: list) -> dict:
    ours, ref = mot_metrics(gt, pred), trackeval_metrics(gt, pred)
    for key in ("hota", "deta", "assa", "mota", "idf1"):
        assert ours[key] == pytest.approx(ref[key], abs=5e-4), (key, ours, ref)
    assert ours["id_switches"] == ref["id_switches"], (ours, ref)
    return ours


@pytest.mark.parametrize("config", [CLASSIC, TrackerConfig()], ids=["classic", "recovery"])
def test_metrics_equal_trackeval_on_tracker_output(crowded_gt, config):
    m = _assert_agree(crowded_gt, _tracked(crowded_gt, config, seed=1))
    assert m["id_switches"] > 0 and m["false_positives"] > 0 and 0.3 < m["hota"] < 0.95, "a case with errors of every kind"


def test_metrics_equal_trackeval_on_identity_errors(crowded_gt):
    """Swapped ids half-way, a fragmented track, a track shifted to low IoU, and frames
    without results."""
    pred = []
    for t, items in enumerate(crowded_gt):
        frame = []
        for gid, (x0, y0, x1, y1) in items:
            pid = gid + 1000
            if t >= 75 and gid % 5 in (0, 1):
                pid = gid + 1001 if gid % 5 == 0 else gid + 999  # neighbours swap ids half-way
            if gid % 7 == 0 and (t // 20) % 2:
                pid = 100_000 + 100 * gid + t // 20  # fragmented: a new id every 40 frames
            shift = 0.35 * (x1 - x0) if gid % 4 == 0 else 0.0  # IoU about 0.5: matched at some thresholds only
            frame.append((pid, [x0 + shift, y0, x1 + shift, y1]))
        pred.append(frame if t % 30 else [])
    m = _assert_agree(crowded_gt, pred)
    assert m["id_switches"] > 5


def test_empty_sides_agree(crowded_gt):
    gt = crowded_gt[:10]
    _assert_agree(gt, [[] for _ in gt])
