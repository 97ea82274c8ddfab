"""``model.imgsz``: a model whose height and width are dynamic runs at the input size asked
(Ultralytics' ``imgsz``), with ``rect`` on top; sizes it cannot run are errors at load."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.errors import ModelError
from pipeline.infer.backends.imgsz import resolve_input_hw
from pipeline.infer.config import BackendOptions, ModelConfig
from pipeline.infer.model import Model
from pipeline.vision.geometry import box_iou
from sources.worlds import make_scene
from tests.test_rect_input import FIXED_INPUT_MODEL


@pytest.fixture(scope="module")
def large():
    return Model.load("shapes-yolov8seg", intra_op_threads=2, imgsz=960)


@pytest.fixture(scope="module")
def crowd():
    """Four frames of a crowded world (seed 3: never trained on) and their labelled boxes."""
    scene = make_scene(3, "crowded")
    for _ in range(60):
        scene.step()
    shots = []
    for _ in range(4):
        for _ in range(5):
            image, labels = scene.step()
        shots.append((image.copy(), np.array([o.xyxy for o in labels.objects], np.float32)))
    return shots


def test_a_number_means_a_square_and_a_pair_is_height_then_width():
    assert ModelConfig(imgsz=960).imgsz == (960, 960)
    assert ModelConfig(imgsz=[544, 960]).imgsz == (544, 960)
    assert ModelConfig().imgsz is None
    for bad in (0, [544, 960, 3], "large", [0, 32]):
        with pytest.raises(ValueError, match="imgsz"):
            ModelConfig(imgsz=bad)


def test_16_9_video_goes_in_at_544x960_and_boxes_come_back_in_frame_pixels(model, large, crowd):
    assert large.input_hw == (960, 960) and large.info()["input_hw"] == [960, 960] and large.rect
    image, _ = crowd[0]
    blob, (g,) = large.preprocess([image])
    assert blob.shape == (1, 3, 544, 960) and (g.new_h, g.new_w, g.pad_y) == (540, 960, 2)
    (big,), (small,) = large.infer([image]), model.infer([image])
    sure = small.confidence >= 0.7
    assert sure.sum() >= 5
    # What the 640 input is sure of, the 960 input finds in the same place of the frame.
    assert (box_iou(small.xyxy[sure], big.xyxy).max(axis=1) >= 0.85).all()
    assert big.masks is not None and big.full_masks().shape[1:] == image.shape[:2]


def test_a_larger_input_finds_more_of_a_crowd(model, large, crowd):
    """Small objects are 1.5x larger at 960: more of the labelled objects are found (score
    ≥ 0.25, box IoU ≥ 0.5). Measured: 59 of 74 at 640, 67 at 960."""
    found = {}
    for name, m in (("640", model), ("960", large)):
        hits = 0
        for image, gt in crowd:
            d = m.infer([image])[0]
            d = d[d.confidence >= 0.25]
            hits += int((box_iou(gt, d.xyxy).max(axis=1) >= 0.5).sum())
        found[name] = hits
    assert found["960"] >= found["640"] + 5, found


def test_sides_off_the_stride_are_an_error_naming_a_size_that_works():
    with pytest.raises(ModelError, match=r"model\.imgsz 1000x544: each side must be a multiple of the model's "
                                         r"stride 32 \(e\.g\. 1024x544\)"):
        Model.load("shapes-yolov8seg", imgsz=[544, 1000], warm_up=False)


def test_a_fixed_input_runs_at_its_own_size_only():
    with pytest.raises(ModelError, match=r"yolo11-det\.onnx: model\.imgsz 320x320 needs an input of any height and "
                                         r"width; the model's input is fixed at 160x160"):
        Model.load(str(FIXED_INPUT_MODEL), imgsz=320, warm_up=False)
    assert Model.load(str(FIXED_INPUT_MODEL), imgsz=160, warm_up=False).input_hw == (160, 160)


def test_the_size_comes_from_the_fixed_sides_the_option_then_the_metadata():
    dynamic, meta = ["batch", 3, "height", "width"], {"imgsz": "[384, 640]", "stride": "32"}
    assert resolve_input_hw(dynamic, meta, BackendOptions()) == (384, 640)
    assert resolve_input_hw(dynamic, {"imgsz": "320"}, BackendOptions()) == (320, 320)
    assert resolve_input_hw(dynamic, {}, BackendOptions()) == (640, 640)
    assert resolve_input_hw(dynamic, meta, BackendOptions(imgsz=(544, 960))) == (544, 960)
    assert resolve_input_hw([1, 3, 640, -1], meta, BackendOptions(imgsz=960)) == (640, 960)  # TensorRT's -1
    assert resolve_input_hw([1, 3, 160, 160], meta, BackendOptions(imgsz=960)) == (160, 160)
    with pytest.raises(ModelError, match=r"m\.onnx: imgsz metadata 'big' is not a size .* set model\.imgsz"):
        resolve_input_hw(dynamic, {"imgsz": "big"}, BackendOptions(), "m.onnx")


def test_the_metadata_stride_is_checked_before_any_engine_is_built():
    """resolve_input_hw is what the TensorRT backend and provider size their engine with."""
    dynamic = ["batch", 3, "height", "width"]
    with pytest.raises(ModelError, match=r"m\.onnx: model\.imgsz 1000x544: .* stride 64 \(e\.g\. 1024x576\)"):
        resolve_input_hw(dynamic, {"stride": "[8, 16, 32, 64]"}, BackendOptions(imgsz=(544, 1000)), "m.onnx")
    # A classifier is centre-cropped to its input: any size.
    assert resolve_input_hw(dynamic, {"stride": "32", "task": "classify"}, BackendOptions(imgsz=299)) == (299, 299)


def test_a_partly_fixed_input_takes_only_its_free_side():
    from pipeline.infer.backends.base import open_backend
    from pipeline.zoo import default_model_path

    backend = open_backend(default_model_path(), ModelConfig(intra_op_threads=1, imgsz=960))
    backend.input_shape = ["batch", 3, 640, "width"]
    assert backend.input_hw == (640, 960)
    with pytest.raises(ModelError, match=r"model\.imgsz 960x960 needs an input of any height and width; the model's "
                                         r"input is fixed at 960x640"):
        Model(backend, ModelConfig(intra_op_threads=1, imgsz=960))


def test_gpu_providers_are_told_the_size_asked():
    """The TensorRT provider's profile is written before the session exists, from this."""
    from pipeline.infer.backends.onnxruntime import _onnx_input, provider_options
    from pipeline.zoo import default_model_path

    options = BackendOptions(imgsz=960)
    name, hw, dynamic_batch = _onnx_input(default_model_path(), options)
    assert (name, hw, dynamic_batch) == ("images", (960, 960), True)
    (_, trt), = provider_options(["TensorrtExecutionProvider"], options, 4, name, hw, dynamic_batch)
    assert trt["trt_profile_max_shapes"] == "images:4x3x960x960"
