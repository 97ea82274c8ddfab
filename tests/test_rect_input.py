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
        # An object cut by the frame's bottom edge sees 12 grey rows below it here and 140
        # in the square: its box may shift by a pixel or two (IoU 0.944 for a 76-px circle).
        _same_detections(a, b, min_iou=0.92)
        assert a.masks is not None and b.masks is not None
        full_a, full_b = a.full_masks(), b.full_masks()
        for i, j in enumerate(box_iou(a.xyxy, b.xyxy).argmax(axis=1)):
            if a.confidence[i] >= 0.6:
                inter = np.logical_and(full_a[i], full_b[j]).sum()
                assert inter / np.logical_or(full_a[i], full_b[j]).sum() >= 0.9


def _equal(a, b) -> None:
    assert len(a) == len(b) and np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.confidence, b.confidence)


def test_frames_of_other_sizes_batch_apart_and_answer_as_alone(model, frames):
    """A 16:9 and a 4:3 frame: two batches at their own inputs, each frame's answer exactly as alone."""
    four_three = np.ascontiguousarray(frames[1][:, 160:1120])  # 720x960
    images = [frames[0], four_three, frames[2]]
    assert model.preprocess.groups(images) == [[0, 2], [1]]
    shapes = [(indices, blob.shape) for indices, blob, _ in model.batches(images)]
    assert shapes == [([0, 2], (2, 3, 384, 640)), ([1], (1, 3, 480, 640))]
    with pytest.raises(ValueError, match="different input sizes"):
        model.preprocess(images)
    together = model.infer(images)
    for t, image in zip(together, images):
        _equal(t, model.infer([image])[0])


def test_streams_of_other_sizes_in_one_pipeline_answer_as_alone(model):
    """Through the inference stage, batching two streams of other shapes: results as the model alone gives them."""
    from pipeline import Pipeline

    cfg = {"streams": [{"id": f"s{w}", "source": {"type": "synthetic", "seed": 3, "frames": 6, "width": w, "height": 360}}
                       for w in (640, 480)],
           "model": {"intra_op_threads": 2}, "batching": {"max_batch_size": 2, "max_wait_ms": 200}}
    pipeline = Pipeline.from_config(cfg)
    with pipeline:
        results = list(pipeline)
    assert len(results) == 12 and pipeline.inference.batches < 12, "frames were batched together"
    for r in results:
        _equal(r.detections, model.infer([r.image])[0])


def test_odd_sizes_keep_the_square_scale():
    """A 129x1280 frame: 640x64 of content at scale 0.5 in a 64-row input, as in the square."""
    from pipeline.infer.preprocess import Preprocessor

    g = Preprocessor((640, 640), rect_stride=32).geometry((129, 1280))
    square = Preprocessor((640, 640)).geometry((129, 1280))
    assert (g.in_h, g.in_w, g.new_h, g.new_w) == (64, 640, square.new_h, square.new_w) == (64, 640, 64, 640)


def test_rect_off_feeds_the_square(square, frames):
    assert not square.rect
    blob, (g,) = square.preprocess([frames[0]])
    assert blob.shape == (1, 3, 640, 640) and g.pad_y == 140


def test_default_needs_a_cpu_run_and_the_stride_metadata(caplog):
    """GPU providers tune per shape, a guessed stride may be wrong: rect is then off unless asked."""
    from pipeline.infer.backends.base import open_backend
    from pipeline.infer.config import ModelConfig
    from pipeline.zoo import default_model_path

    def model_with(rect=None, drop_stride=False, device="cpu", input_shape=None):
        backend = open_backend(default_model_path(), ModelConfig(intra_op_threads=1))
        if drop_stride:
            backend.metadata = {k: v for k, v in backend.metadata.items() if k != "stride"}
        backend.device = device
        if input_shape is not None:
            backend.input_shape = input_shape
        return Model(backend, ModelConfig(intra_op_threads=1, rect=rect))

    assert model_with().rect
    assert not model_with(device="cuda").rect and model_with(device="cuda", rect=True).rect
    assert not model_with(drop_stride=True).rect
    assert model_with(drop_stride=True, rect=True).preprocess.rect_stride == 32
    assert "no stride in its metadata" in caplog.text
    assert not model_with(input_shape=["batch", 3, "height", 640]).rect  # only both sides dynamic count
    with pytest.raises(ModelError, match="model.rect needs an input of any height and width"):
        model_with(rect=True, input_shape=["batch", 3, "height", 640])


def test_rect_on_a_fixed_input_model_is_a_clear_error():
    with pytest.raises(ModelError, match=r"yolo11-det\.onnx: model\.rect needs an input of any height and width; "
                                         r"the model's input is fixed at 160x160"):
        Model.load(str(FIXED_INPUT_MODEL), rect=True, warm_up=False)
    assert not Model.load(str(FIXED_INPUT_MODEL), warm_up=False).rect  # default: off where fixed
