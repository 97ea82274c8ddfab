"""The per-task decoders on hand-built output arrays, with exact expectations: end-to-end
heads (detect, seg, pose), classic pose, classification (with its per-stream window) and
semantic segmentation (class map and logits), and layout recognition for every row of
issue 15's table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import select_kernels
from pipeline.infer.layouts import LayoutError, LayoutHints, recognise
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks import StreamState, decoder_for

KERNELS, _ = select_kernels("cpu")
# A 1280×720 frame in a 640×640 input: scale 0.5, 140 px of padding above and below.
BOX = Letterbox.fit((720, 1280), (640, 640))
E2E, POSE = LayoutHints(end2end=True), LayoutHints(task="pose", kpt_shape=(2, 3))


def _decode(shapes, outputs, hints=None, names=("a", "b", "c"), state=None, **options):
    layout = recognise(shapes, len(names) if names else None, None, hints or LayoutHints())
    decoder = decoder_for(layout, PostprocessOptions(**options), names, KERNELS, ())
    return decoder.decode([o[np.newaxis] for o in outputs], 0, BOX, None, state)


@pytest.mark.parametrize("shapes,nc,hints,name,task", [
    ([(1, 300, 6)], 80, E2E, "end2end", "detect"),
    ([(1, 300, 6)], 80, LayoutHints(), "end2end", "detect"),  # 6 columns cannot hold 80 classes
    ([(1, 300, 38), (1, 32, 160, 160)], 80, E2E, "end2end-seg", "segment"),
    ([(1, 300, 38), (1, 32, 160, 160)], 1, E2E, "end2end-seg", "segment"),  # also fits YOLOv5-seg: metadata decides
    ([(1, 300, 38), (1, 32, 160, 160)], 1, LayoutHints(), "yolov5-seg", "segment"),
    ([(1, 56, 8400)], 1, LayoutHints(task="pose", kpt_shape=(17, 3)), "yolov8-pose", "pose"),
    ([(1, 300, 57)], 1, LayoutHints(task="pose", end2end=True, kpt_shape=(17, 3)), "end2end-pose", "pose"),
    ([("batch", 1000)], 1000, LayoutHints(task="classify"), "classify", "classify"),
    ([(1, 160, 160)], 19, LayoutHints(task="semantic"), "semantic", "semantic"),
    ([(1, 19, 160, 160)], 19, LayoutHints(), "semantic-logits", "semantic"),
    ([(1, 39, 8400), (1, 32, 160, 160)], 3, LayoutHints(task="segment"), "yolov8-seg", "segment"),
    ([(1, 84, 8400)], 80, LayoutHints(task="detect"), "yolov8", "detect"),
])
def test_every_layout_of_the_table_is_recognised(shapes, nc, hints, name, task):
    layout = recognise(shapes, nc, None, hints)
    assert (layout.name, layout.task) == (name, task)
    if task == "pose":
        assert (layout.num_keypoints, layout.keypoint_dims) == (17, 3)


def test_unknown_layouts_and_pose_without_kpt_shape_are_one_line():
    with pytest.raises(LayoutError) as e:
        recognise([(1, 7, 7, 7, 7)], 3)
    assert "fit no known layout" in str(e.value) and "end-to-end" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(LayoutError, match="kpt_shape"):
        recognise([(1, 56, 8400)], 1, None, LayoutHints(task="pose"))


def test_end_to_end_rows_are_final_filtered_and_unletterboxed():
    rows = np.zeros((300, 6), np.float32)
    rows[0] = [100, 240, 300, 340, 0.9, 1]
    rows[1] = [100, 240, 300, 340, 0.8, 1]  # the same box: no NMS, both stay
    rows[2] = [0, 140, 640, 500, 0.5, 2]
    rows[3] = [10, 150, 20, 160, 0.3, 0]  # below confidence
    d = _decode([(1, 300, 6)], [rows], E2E, confidence=0.4)
    assert d.xyxy.tolist() == [[200, 200, 600, 400], [200, 200, 600, 400], [0, 0, 1280, 720]]
    assert d.class_id.tolist() == [1, 1, 2] and d.confidence.tolist() == pytest.approx([0.9, 0.8, 0.5])
    assert d.masks is None and d.keypoints is None
    only_c = _decode([(1, 300, 6)], [rows], E2E, confidence=0.4, class_filter=["c"])
    assert only_c.class_id.tolist() == [2]
    assert len(_decode([(1, 300, 6)], [rows], E2E, confidence=0.4, max_detections=2)) == 2


def test_end_to_end_seg_masks_decode_through_the_kernels():
    nm = 4
    rows = np.zeros((10, 6 + nm), np.float32)
    rows[0, :6] = [0, 140, 320, 500, 0.9, 0]  # the left half of the frame
    rows[0, 6:] = [1, 0, 0, 0]
    protos = np.full((nm, 160, 160), -1.0, np.float32)
    protos[0] = 1.0  # coefficient 1 on an all-positive prototype: a full box
    for mode in ("accurate", "tradeoff", "fast", "ultralytics"):
        d = _decode([(1, 10, 6 + nm), (1, nm, 160, 160)], [rows, protos], E2E, mask_decode_mode=mode)
        assert d.xyxy.tolist() == [[0, 0, 640, 720]]
        assert d.masks[0].shape == (720, 640) and d.masks[0].all()
    rows[1, :6] = [320, 140, 640, 500, 0.8, 1]  # coefficients 0: an empty mask
    shapes = [(1, 10, 6 + nm), (1, nm, 160, 160)]
    assert [m.any() for m in _decode(shapes, [rows, protos], E2E).masks] == [True, False]
    dropped = _decode(shapes, [rows, protos], E2E, drop_empty_masks=True)  # as Ultralytics reports them
    assert dropped.class_id.tolist() == [0] and len(dropped.masks) == 1


def test_end_to_end_pose_keypoints_in_source_pixels_with_keypoint_confidence():
    rows = np.zeros((5, 6 + 2 * 3), np.float32)
    rows[0] = [100, 240, 300, 340, 0.9, 0, 200, 290, 0.95, 640, 640, 0.2]
    d = _decode([(1, 5, 12)], [rows], LayoutHints(task="pose", end2end=True, kpt_shape=(2, 3)), names=("person",),
                keypoint_confidence=0.5)
    assert d.xyxy.tolist() == [[200, 200, 600, 400]]
    # (200, 290) → (400, 300); (640, 640) → clipped to the frame's corner; 0.2 < 0.5 → confidence 0
    np.testing.assert_allclose(d.keypoints[0], [[400, 300, 0.95], [1280, 720, 0]], rtol=1e-6)


def test_classic_pose_candidates_nms_and_keypoints():
    a = 16  # anchors outnumber channels, as in every real head
    out = np.zeros((4 + 1 + 2 * 3, a), np.float32)
    out[:4, 0] = [200, 290, 200, 100]  # xywh: the box (100, 240)-(300, 340)
    out[:4, 1] = [202, 290, 200, 100]  # overlaps it: suppressed
    out[:4, 2] = [500, 300, 40, 40]
    out[4, :3] = [0.9, 0.8, 0.7]
    out[5:, 0] = [200, 290, 1.0, 100, 240, 0.6]
    out[5:, 2] = [500, 300, 0.4, 510, 310, 0.9]
    d = _decode([(1, 11, a)], [out], POSE, names=("person",), keypoint_confidence=0.5)
    assert d.confidence.tolist() == pytest.approx([0.9, 0.7])
    assert d.xyxy.tolist() == [[200, 200, 600, 400], [960, 280, 1040, 360]]
    np.testing.assert_allclose(d.keypoints, [[[400, 300, 1.0], [200, 200, 0.6]],
                                             [[1000, 320, 0.0], [1020, 340, 0.9]]], rtol=1e-6)


def test_classification_top_k_confidence_filter_and_window_per_stream():
    p = np.array([0.1, 0.6, 0.3], np.float32)
    d = _decode([(1, 3)], [p], top_k=2, confidence=0.0)
    assert len(d) == 0 and d.classification.category == ["b", "c"]
    assert d.classification.confidence.tolist() == pytest.approx([0.6, 0.3])
    assert _decode([(1, 3)], [p], confidence=0.5).classification.category == ["b"]
    assert _decode([(1, 3)], [p], confidence=0.0, class_filter=["a", "c"]).classification.category == ["c", "a"]
    layout = recognise([(1, 3)], 3)
    decoder = decoder_for(layout, PostprocessOptions(classification_window=2, top_k=1), "abc", KERNELS)
    s1, s2 = StreamState(), StreamState()
    frames = [np.array([[0.0, 1.0, 0.0]], np.float32), np.array([[0.0, 0.0, 1.0]], np.float32),
              np.array([[0.0, 0.0, 1.0]], np.float32)]
    got = [decoder.decode([f], 0, BOX, None, s1).classification for f in frames]
    assert [c.category for c in got] == [["b"], ["b"], ["c"]]  # mean of (b, c) ties: lower id first
    assert got[1].confidence.tolist() == [0.5] and got[2].confidence.tolist() == [1.0]
    other = decoder.decode([frames[1]], 0, BOX, None, s2).classification  # another stream: its own window
    assert other.category == ["c"] and other.confidence.tolist() == [1.0]


def test_semantic_class_map_and_logits_cut_padding_and_resize_nearest():
    m = np.zeros((64, 64), np.int64)  # a 64×64 map of the 640×640 input: 14 rows of padding each side
    m[14:50, :32] = 1
    m[14:50, 32:] = 2
    d = _decode([(1, 64, 64)], [m], LayoutHints(task="semantic"))
    cmap = d.semantic.class_map
    assert len(d) == 0 and cmap.shape == (720, 1280)
    assert (cmap[:, :640] == 1).all() and (cmap[:, 640:] == 2).all()
    assert d.semantic.category == ["b", "c"] and d.semantic.share.tolist() == [0.5, 0.5]
    logits = np.stack([m == c for c in range(3)]).astype(np.float32)
    d2 = _decode([(1, 3, 64, 64)], [logits])
    np.testing.assert_array_equal(d2.semantic.class_map, cmap)


def test_classification_input_is_scaled_and_centre_cropped_like_ultralytics():
    from pipeline.infer.preprocess import Preprocessor

    image = np.zeros((100, 400, 3), np.uint8)  # short side 100 → 50: 200×50, the centre 50 columns kept
    image[:, 175:225] = 200  # a band at the centre: columns 12.5..37.5 of the crop
    blob, (g,) = Preprocessor((50, 50), center_crop=True)([image])
    assert (g.src_h, g.src_w) == (100, 400)
    assert blob.shape == (1, 3, 50, 50) and np.allclose(blob[0, :, :, 13:37], 200 / 255)
    assert np.allclose(blob[0, :, :, :10], 0) and np.allclose(blob[0, :, :, 40:], 0)
    letterboxed, _ = Preprocessor((50, 50))([image])
    assert np.allclose(letterboxed[0, :, 0], 114 / 255), "other models keep the letterbox"


def test_gpu_post_processing_of_every_family_matches_the_cpu_in_the_simulator():
    """Device outputs through the CUDA kernels (Numba's CUDA simulator runs them here)."""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "tests/cuda_families.py"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    cases = {c["layout"]: c for c in map(json.loads, proc.stdout.splitlines())}
    assert set(cases) == {"end2end-seg", "yolov8-pose", "classify", "semantic-logits"}
    assert all(c["same"] for c in cases.values()), cases
    assert cases["end2end-seg"]["detections"] == 4 and cases["yolov8-pose"]["detections"] > 0


def test_ultralytics_mask_axes_are_pytorch_bilinear_with_its_padding_crop():
    from pipeline.infer.tasks.masks import ultralytics_axes

    # 320×180 in a 160 input, 40×40 prototypes: 35 px of padding cut whole only after ×4 upsampling.
    ay, ax = ultralytics_axes((180, 320), (40, 40))
    assert ay.shape == (180, 40) and ax.shape == (320, 40)
    np.testing.assert_allclose(ay.sum(1), 1, atol=1e-6)  # interpolation weights
    np.testing.assert_allclose(ax.sum(1), 1, atol=1e-6)
    # Upsampled ×4 then cropped from row 35: its row 35 is at prototype row (35 + 0.5) / 4 - 0.5 = 8.375,
    # row 36 at 8.625. Source row 0 samples the crop at -0.25 (clamped: row 35), row 1 at 0.25.
    assert np.flatnonzero(ay[0]).tolist() == [8, 9]
    np.testing.assert_allclose(ay[0, 8:10], [0.625, 0.375], atol=1e-6)
    np.testing.assert_allclose(ay[1, 8:10], [0.75 * 0.625 + 0.25 * 0.375, 0.75 * 0.375 + 0.25 * 0.625], atol=1e-6)
