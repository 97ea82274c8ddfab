"""The synthetic world: determinism, labels consistent with pixels, the clip writer."""

from __future__ import annotations

import av
import numpy as np

from pipeline.vision import rle
from sources.scene import CLASS_NAMES, SyntheticScene


def _run(seed: int, n: int, **kw):
    scene = SyntheticScene(seed, **kw)
    return [scene.step() for _ in range(n)]


def test_same_seed_gives_identical_frames_and_labels():
    a = _run(5, 20, width=640, height=360)
    b = _run(5, 20, width=640, height=360)
    for (ia, la), (ib, lb) in zip(a, b):
        assert np.array_equal(ia, ib)
        assert [(o.track_id, o.class_id, o.xyxy) for o in la.objects] == [(o.track_id, o.class_id, o.xyxy) for o in lb.objects]
        assert all(np.array_equal(x.mask, y.mask) for x, y in zip(la.objects, lb.objects))
    c = _run(6, 1, width=640, height=360)
    assert not np.array_equal(a[0][0], c[0][0])


def test_labels_are_consistent_with_pixels():
    frames = _run(9, 60)
    seen_classes = set()
    ids_per_frame = []
    for image, labels in frames:
        owner = np.zeros(image.shape[:2], np.int32)
        for o in labels.objects:
            seen_classes.add(o.class_id)
            x0, y0, x1, y1 = o.xyxy
            m = o.mask
            assert m.shape == (y1 - y0, x1 - x0)
            # The box is the tight box of the visible mask.
            assert m[0].any() and m[-1].any() and m[:, 0].any() and m[:, -1].any()
            # Visible masks never overlap (occlusion resolved).
            region = owner[y0:y1, x0:x1]
            assert not (region[m] != 0).any()
            region[m] = o.track_id
            # Pixels inside the mask carry the object's colour (shading ±12 %, noise σ 4).
            pixels = image[y0:y1, x0:x1][m].astype(np.float32)
            median = np.median(pixels, axis=0)
            assert np.all(np.abs(median - np.asarray(o.color)) < 0.15 * np.asarray(o.color) + 12), (o, median)
        ids_per_frame.append({o.track_id for o in labels.objects})
    assert seen_classes == set(range(len(CLASS_NAMES)))
    # Objects enter and leave: the set of ids changes over 2 s.
    assert ids_per_frame[0] != ids_per_frame[-1]
    sizes = [max(o.xyxy[2] - o.xyxy[0], o.xyxy[3] - o.xyxy[1]) for _, lab in frames for o in lab.objects]
    assert min(sizes) < 40 and max(sizes) > 120


def test_writer_encodes_h264_with_coco_labels(small_clip, gt_small):
    with av.open(str(small_clip)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(stream)]
    assert len(frames) == len(gt_small["images"]) == 40
    assert frames[0].shape == (360, 640, 3)
    assert [c["name"] for c in gt_small["categories"]] == list(CLASS_NAMES)
    anns = gt_small["annotations"]
    assert anns and all("track_id" in a for a in anns)
    # RLE decodes to the mask whose box and area are recorded, and matches the scene's label.
    scene = SyntheticScene(11, 640, 360)
    _, labels = scene.step()
    first = [a for a in anns if a["image_id"] == 1]
    assert len(first) == len(labels.objects)
    for a, o in zip(sorted(first, key=lambda a: a["track_id"]), labels.objects):
        full = rle.decode(a["segmentation"])
        assert np.array_equal(full, o.full_mask(360, 640))
        assert a["area"] == int(full.sum())
        x, y, w, h = a["bbox"]
        assert (x, y, x + w, y + h) == o.xyxy
    # The encoded pixels still show the objects: mean colour inside masks close to the label colour.
    image = frames[0]
    for o in labels.objects:
        x0, y0, x1, y1 = o.xyxy
        if o.mask.sum() < 200:
            continue
        median = np.median(image[y0:y1, x0:x1][o.mask].astype(np.float32), axis=0)
        assert np.all(np.abs(median - np.asarray(o.color)) < 0.15 * np.asarray(o.color) + 20)


def test_crowded_world_hides_objects_behind_its_posts():
    from typing import get_args

    from sources.config import SyntheticSourceConfig
    from sources.worlds import WORLDS, make_scene, occluder_boxes

    assert set(get_args(SyntheticSourceConfig.model_fields["world"].annotation)) == set(WORLDS)
    posts = occluder_boxes(3, WORLDS["crowded"].occluders, 640, 360)
    crowded, default = make_scene(3, "crowded", 640, 360), make_scene(3, "default", 640, 360)
    counts = {"crowded": 0, "default": 0}
    for _ in range(40):
        for name, scene in (("crowded", crowded), ("default", default)):
            _, labels = scene.step()
            counts[name] += len(labels.objects)
            if name == "crowded":
                for o in labels.objects:  # no labelled pixel lies under a post
                    full = o.full_mask(360, 640)
                    assert not any(full[y0:y1, x0:x1].any() for x0, y0, x1, y1 in posts), o.track_id
    assert counts["crowded"] > 1.5 * counts["default"]
    # The default world renders as before the occluders existed (the model was trained on it).
    a, b = SyntheticScene(3, 640, 360).step()[0], make_scene(3, "default", 640, 360).step()[0]
    assert np.array_equal(a, b)
