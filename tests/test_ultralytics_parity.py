"""Parity with Ultralytics' own predictor on the same ONNX files and frames (issue 15): the
fixtures under tests/fixtures/ultralytics/ were written by Ultralytics' exporter and
predictor (see its README); here vidpipe decodes the same models on the same frames.

Same detections (count and classes), boxes within 1 px, median mask IoU >= 0.99,
keypoints within 1 px, classification top-5 identical, semantic class maps identical."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.model import Model

FIXTURES = Path(__file__).parent / "fixtures" / "ultralytics"
MANIFEST = FIXTURES / "manifest.json"
pytestmark = pytest.mark.skipif(not MANIFEST.exists(), reason="the Ultralytics fixtures (branch wt-fixtures) are not here")


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"models": [], "frames": []}


def _rle_mask(rle: dict) -> np.ndarray:
    h, w = rle["size"]
    counts = rle["counts"]
    flat = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)
    return flat.reshape(w, h).T


def _load(entry: dict, settings: dict) -> Model:
    """The fixture's model with the predictor's settings (top 5 for classifiers, every class)."""
    options = PostprocessOptions(confidence=settings["conf"], iou_threshold=settings["iou"],
                                 max_detections=settings["max_det"], class_agnostic_nms=bool(settings["agnostic_nms"]),
                                 top_k=5, drop_empty_masks=True,
                                 mask_decode_mode="ultralytics")
    if entry["task"] == "classify":
        options = options.model_copy(update={"confidence": 0.0})  # Ultralytics' top5 has no threshold
    return Model.load(FIXTURES / entry["file"], intra_op_threads=1, postprocess=options)


def _match(want_boxes: np.ndarray, want_cls: list[int], got) -> list[int]:
    """For each of Ultralytics' detections (its order), ours of the same class with the
    closest box, each used once."""
    used: set[int] = set()
    order = []
    for box, c in zip(want_boxes, want_cls):
        diff = np.abs(got.xyxy - box).max(axis=1) if len(got) else np.zeros(0)
        diff = np.where(got.class_id == c, diff, np.inf)
        diff[list(used)] = np.inf
        j = int(np.argmin(diff))
        assert diff[j] <= 1.0, f"no detection of class {c} within 1 px of {box.tolist()} (closest {diff[j]:.2f} px)"
        used.add(j)
        order.append(j)
    return order


def _check_frame(task: str, want: dict, got, ious: list[float]) -> None:
    if task == "classify":
        got_top5 = got.classification.class_id[:5].tolist()
        assert got_top5 == want["top5"]["ids"], (got_top5, want["top5"])
        return
    if task == "semantic":
        expect = cv2.imread(str(FIXTURES / want["class_map"]), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got.semantic.class_map, expect)
        return
    boxes = np.asarray(want["boxes"], np.float32).reshape(-1, 4)
    assert len(got) == len(boxes), f"{len(got)} detections, Ultralytics {len(boxes)}"
    order = _match(boxes, want["classes"], got)
    if task == "segment":
        full = got.full_masks()
        for i, j in enumerate(order):
            a, b = full[j], _rle_mask(want["masks"][i])
            union = np.logical_or(a, b).sum()
            ious.append(1.0 if union == 0 else float(np.logical_and(a, b).sum() / union))
    if task == "pose":
        kpts = np.asarray(want["keypoints"], np.float32)
        np.testing.assert_allclose(got.keypoints[order][..., :2], kpts[..., :2], atol=1.0)


@pytest.mark.parametrize("entry", _manifest()["models"], ids=lambda e: e["name"])
def test_vidpipe_matches_ultralytics_predictions(entry):
    manifest = _manifest()
    predictions = json.loads((FIXTURES / entry["predictions"]).read_text())
    model = _load(entry, predictions["settings"])
    assert model.task == entry["task"]
    ious: list[float] = []
    frames = {f["name"]: f for f in manifest["frames"]}
    total = 0
    for want in predictions["frames"]:
        image = cv2.imread(str(FIXTURES / frames[want["frame"]]["file"]))
        got = model.infer([image])[0]
        _check_frame(entry["task"], want, got, ious)
        total += len(want.get("boxes", [])) or 1
    assert total > 0
    if entry["task"] == "segment":
        assert ious and float(np.median(ious)) >= 0.99, f"median mask IoU {np.median(ious):.4f}"
