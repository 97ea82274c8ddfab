"""``model.rect``: frames go in at the smallest input that holds them where the model's
height and width are dynamic (the bundled models), as Ultralytics feeds them; the square
where asked or where the model is fixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import ModelError
from pipeline.infer.model import Model
from pipeline.vision.geometry import box_iou
from sources.scene import SyntheticScene

FIXED_INPUT_MODEL = Path(__file__).parent / "fixtures" / "ultralytics" / "yolo11-det.onnx"  # exported static


@pytest.fixture(scope="module")
def square():
    return Model.load("shapes-yolov8seg", intra_op_threads=1, rect=False)


@pytest.fixture(scope="module")
def frames():
    scene = SyntheticScene(7, 1280, 720)
    return [scene.step()[0].copy() for _ in range(6)]


def _same_detections(a, b, min_iou: float = 0.95, sure: float = 0.6) -> None:
    """Every detection either is sure of (score ≥ ``sure``) is in the other (any score; one
    near the confidence threshold may cross it), in the same place."""
    assert len(a) and len(b)
    iou = box_iou(a.xyxy, b.xyxy)
    assert (iou.max(axis=1)[a.confidence >= sure] >= min_iou).all(), iou.max(axis=1)
    assert (iou.max(axis=0)[b.confidence >= sure] >= min_iou).all(), iou.max(axis=0)


def test_bundled_model_takes_16_9_video_at_384x640(model, frames):
    assert model.rect and model.info()["rect"] is True
    blob, (g,) = model.preprocess([frames[0]])
    assert blob.shape == (1, 3, 384, 640)
    assert (g.new_h, g.new_w, g.pad_y, g.pad_x) == (360, 640, 12, 0)  # Ultralytics' rect letterbox
    grey = np.float32(114) * np.float32(1 / 255)  # as to_blob scales
    assert (blob[0, :, :12] == grey).all() and (blob[0, :, 372:] == grey).all() and (blob[0, :, 12] != grey).any()


def test_rect_finds_what_the_square_finds(model, square, frames):
    """Same scale, fewer grey rows: the same objects in the same places (masks too)."""
    for frame in frames:
        (a,), (b,) = model.infer([frame]), square.infer([frame])
        _same_detections(a, b)
        assert a.masks is not None and b.masks is not None
        full_a, full_b = a.full_masks(), b.full_masks()
        for i, j in enumerate(box_iou(a.xyxy, b.xyxy).argmax(axis=1)):
            if a.confidence[i] >= 0.6:
                inter = np.logical_and(full_a[i], full_b[j]).sum()
                assert inter / np.logical_or(full_a[i], full_b[j]).sum() >= 0.9


def test_a_mixed_batch_goes_in_at_its_largest_input(model, frames):
    """A 16:9 and a 4:3 frame batched: one 480x640 input, each frame's detections as alone."""
    four_three = np.ascontiguousarray(frames[1][:, 160:1120])  # 720x960
    blob, geoms = model.preprocess([frames[0], four_three])
    assert blob.shape == (2, 3, 480, 640)
    assert [(g.pad_y, g.new_h) for g in geoms] == [(60, 360), (0, 480)]
    together = model.infer([frames[0], four_three])
    alone = [model.infer([frames[0]])[0], model.infer([four_three])[0]]
    for t, a in zip(together, alone):
        _same_detections(t, a, 0.9)
    blob, _ = model.preprocess([frames[2]])  # and back to the 16:9 input: buffers are views
    assert blob.shape == (1, 3, 384, 640) and blob.flags.c_contiguous


def test_rect_off_feeds_the_square(square, frames):
    assert not square.rect
    blob, (g,) = square.preprocess([frames[0]])
    assert blob.shape == (1, 3, 640, 640) and g.pad_y == 140


def test_rect_on_a_fixed_input_model_is_a_clear_error():
    with pytest.raises(ModelError, match=r"yolo11-det\.onnx: model\.rect needs an input of any height and width; "
                                         r"the model's input is fixed at 160x160"):
        Model.load(str(FIXED_INPUT_MODEL), rect=True, warm_up=False)
    assert not Model.load(str(FIXED_INPUT_MODEL), warm_up=False).rect  # default: off where fixed
