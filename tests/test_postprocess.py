"""Numba post-processing vs the plain NumPy reference (tests/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as coco_mask

from pipeline.infer.postprocess import postprocess_segmentation
from pipeline.vision.detections import Detections
from tests.reference import make_raw_outputs, reference_postprocess

LAYOUTS = ["yolov5-seg", "yolov8-seg"]
MODES = ["accurate", "tradeoff", "fast"]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def assert_parity(dets: Detections, ref: dict, min_mask_iou: float = 0.99) -> None:
    assert len(dets) == len(ref["xyxy"]), "different kept detections"
    np.testing.assert_array_equal(dets.class_id, ref["class_id"])
    np.testing.assert_allclose(dets.confidence, ref["confidence"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(dets.xyxy, ref["xyxy"], atol=0.5)
    if ref["masks"] is not None:
        for got, want in zip(dets.masks, ref["masks"]):
            assert got.shape == want.shape
            assert mask_iou(got, want) >= min_mask_iou


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(LAYOUTS),
    mode=st.sampled_from(MODES),
    agnostic=st.booleans(),
    n_objects=st.integers(0, 25),
    source=st.sampled_from([(1080, 1920), (720, 1280), (480, 640), (1000, 700)]),
    tradeoff=st.floats(0, 1),
    max_area=st.sampled_from([None, 0.01, 0.5]),
)
def test_random_outputs_match_reference(seed, layout, mode, agnostic, n_objects, source, tradeoff, max_area):
    rng = np.random.default_rng(seed)
    out0, protos = make_raw_outputs(rng, layout, n_objects, source_hw=source, n_anchors=2000)
    kw = dict(confidence=0.4, iou_threshold=0.45, class_agnostic_nms=agnostic, max_detections=50, max_candidates=120,
              mask_decode_mode=mode, tradeoff_factor=tradeoff, max_area_ratio=max_area)
    dets = postprocess_segmentation(out0, protos, layout, (640, 640), source, **kw)
    ref = reference_postprocess(out0, protos, layout, (640, 640), source, **kw)
    assert_parity(dets, ref)
    if dets.masks is not None:  # the kernel's run lengths: the RLE of its masks
        assert dets.rle() == Detections(dets.xyxy, dets.confidence, dets.class_id, source, dets.masks).rle()


def test_class_filter_and_caps():
    rng = np.random.default_rng(1)
    out0, protos = make_raw_outputs(rng, "yolov8-seg", 30)
    names = ("circle", "rectangle", "triangle")
    dets = postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), (1080, 1920), class_filter=["triangle"],
                                    class_names=names)
    assert len(dets) and set(dets.category) == {"triangle"}
    capped = postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), (1080, 1920), max_detections=3)
    assert len(capped) == 3
    assert np.all(np.diff(capped.confidence) <= 0), "results sorted by score"
    with pytest.raises(ValueError, match="hexagon"):
        postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), (1080, 1920), class_filter=["hexagon"], class_names=names)


def test_agnostic_nms_suppresses_across_classes():
    out0 = np.zeros((4 + 2 + 32, 3), np.float32)
    out0[:4, 0] = out0[:4, 1] = [100, 100, 50, 50]
    out0[4, 0], out0[5, 1] = 0.9, 0.8  # same box, two classes
    protos = np.zeros((32, 160, 160), np.float32)
    per_class = postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), (640, 640))
    agnostic = postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), (640, 640), class_agnostic_nms=True)
    assert len(per_class) == 2 and len(agnostic) == 1 and agnostic.class_id[0] == 0


def test_yolov5_score_is_objectness_times_class():
    out0 = np.zeros((3, 5 + 2 + 32), np.float32)
    out0[0, :4] = [100, 100, 40, 40]
    out0[0, 4], out0[0, 5] = 0.8, 0.75  # score 0.6
    out0[1, :4] = [300, 300, 40, 40]
    out0[1, 4], out0[1, 6] = 0.5, 0.7  # score 0.35 < 0.4: dropped
    dets = postprocess_segmentation(out0, None, "yolov5", (640, 640), (640, 640))
    assert dets.masks is None
    assert dets.confidence.tolist() == pytest.approx([0.6])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", [(1080, 1920), (480, 640), (1000, 700)])
def test_rle_round_trips_through_pycocotools(mode, source):
    """The run lengths the mask kernel writes in the same pass as the masks are COCO's RLE
    of those masks, for every mode and letterbox, and they follow a subset."""
    rng = np.random.default_rng(3)
    out0, protos = make_raw_outputs(rng, "yolov8-seg", 20, source_hw=source)
    dets = postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), source, mask_decode_mode=mode)
    assert len(dets) >= 10 and dets.mask_runs is not None
    full = dets.full_masks()
    for rle, m in zip(dets.rle(), full):
        decoded = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), m)
        assert rle["counts"] == coco_mask.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
    odd = dets[1::2]
    assert odd.mask_runs is not None and odd.rle() == dets.rle()[1::2]
    from_crops = Detections(dets.xyxy, dets.confidence, dets.class_id, dets.image_hw, dets.masks)
    assert from_crops.mask_runs is None and from_crops.rle() == dets.rle()


def test_mask_runs_must_match_the_masks():
    with pytest.raises(ValueError, match="run lengths for 2 masks, with 1 detections"):
        Detections([[0, 0, 2, 2]], [0.9], [0], (4, 4), [np.ones((2, 2), bool)], mask_runs=[np.array([16])] * 2)


def test_polygons_keep_holes():
    m = np.zeros((40, 40), bool)
    m[5:35, 5:35] = True
    m[15:25, 15:25] = False
    dets = Detections(np.array([[10, 20, 50, 60]], np.float32), [0.9], [0], (100, 100), [m])
    rings = dets.polygons(precision=0)[0]
    assert len(rings) == 2, "outer boundary and the hole"
    xs = np.concatenate([r[:, 0] for r in rings])
    assert xs.min() == 15 and xs.max() == 44  # offsets into source pixels


def test_bundled_model_real_outputs_match_reference(model, heldout_clip):
    import av

    with av.open(str(heldout_clip[0])) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(3), c.decode(video=0))]
    lay = model.layout
    for image in frames:
        blob, (g,) = model.preprocess([image])
        outputs = model.run(blob)
        out0, protos = outputs[lay.detections_output][0], outputs[lay.protos_output][0]
        for mode in MODES:
            kw = dict(confidence=0.25, iou_threshold=0.5, mask_decode_mode=mode, tradeoff_factor=0.5)
            dets = postprocess_segmentation(out0, protos, lay.name, model.input_hw, image.shape[:2], **kw)
            ref = reference_postprocess(out0, protos, lay.name, model.input_hw, image.shape[:2], **kw)
            assert len(dets) > 0
            assert_parity(dets, ref)


def test_min_area_ratio_drops_small_boxes():
    out0 = np.zeros((4 + 1 + 32, 2), np.float32)
    out0[:5, 0] = [100, 100, 20, 20, 0.9]  # 400 px² of a 640×640 frame: 0.1 %
    out0[:5, 1] = [400, 400, 200, 200, 0.8]  # 40000 px²: 9.8 %
    protos = np.zeros((32, 160, 160), np.float32)
    both = postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), (640, 640))
    large = postprocess_segmentation(out0, protos, "yolov8-seg", (640, 640), (640, 640), min_area_ratio=0.01)
    assert len(both) == 2 and len(large) == 1 and large.xyxy[0].tolist() == [300, 300, 500, 500]
