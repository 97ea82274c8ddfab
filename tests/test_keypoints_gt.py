"""The synthetic world's keypoints: exact geometry, visibility, and the COCO fields."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sources.keypoints import KEYPOINT_NAMES
from sources.synthetic import write_clip

# A 100 x 50 rectangle turned 45 degrees: each line through the centre meets its outline at
# 25 / cos 45 degrees (a long side, not a corner).
R45 = 25 / math.cos(math.pi / 4)
# A triangle with apex (710, 255) and base (650, 340)-(750, 340): centroid (2110/3, 935/3).
TX, TY = 2110 / 3, 935 / 3

# track id -> (script entry, expected keypoints (x, y, v))
SCENE = {
    # Axis-aligned rectangle: the middle of each edge.
    1: ({"class_id": 1, "size": 200, "x": 300, "y": 200, "aspect": 0.5},
        [(300, 200, 2), (300, 150, 2), (400, 200, 2), (300, 250, 2), (200, 200, 2)]),
    # Triangle: centre = centroid; above it the left edge (not the apex), below it the base.
    2: ({"class_id": 2, "size": 100, "x": 700, "y": 300, "aspect": 0.2},
        [(TX, TY, 2), (TX, 340 - 85 * (TX - 650) / 60, 2), (710 + 40 * (TY - 255) / 85, TY, 2), (TX, 340, 2),
         (650 + 60 * (340 - TY) / 85, TY, 2)]),
    # Turned 45 degrees: each point is on a side, none is a vertex.
    3: ({"class_id": 1, "size": 100, "x": 1000, "y": 400, "aspect": 0.5, "angle": math.pi / 4},
        [(1000, 400, 2), (1000, 400 - R45, 2), (1000 + R45, 400, 2), (1000, 400 + R45, 2), (1000 - R45, 400, 2)]),
    # A circle whose top is hidden by the bar in front of it: labelled there, not visible.
    4: ({"class_id": 0, "size": 120, "x": 300, "y": 520, "z": 0.0},
        [(300, 520, 2), (300, 460, 1), (360, 520, 2), (300, 580, 2), (240, 520, 2)]),
    5: ({"class_id": 1, "size": 80, "x": 300, "y": 470, "aspect": 0.3, "z": 1.0, "color": (200, 40, 40)},
        [(300, 470, 2), (300, 458, 2), (340, 470, 2), (300, 482, 2), (260, 470, 2)]),
    # Half out of the frame on the right: that point is 0, 0, 0 as COCO writes it.
    6: ({"class_id": 0, "size": 100, "x": 1250, "y": 600},
        [(1250, 600, 2), (1250, 550, 2), (0, 0, 0), (1250, 650, 2), (1200, 600, 2)]),
}


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    out = tmp_path_factory.mktemp("kpts")
    script = [SCENE[t][0] for t in sorted(SCENE)]
    write_clip(out / "k.mp4", out / "k.gt.json", frames=1, seed=3, script=script)
    return json.loads((out / "k.gt.json").read_text())


def test_categories_name_keypoints_and_skeleton(coco):
    for cat in coco["categories"]:
        assert cat["keypoints"] == ["centre", "top", "right", "bottom", "left"] == list(KEYPOINT_NAMES)
        assert cat["skeleton"] == [[1, 2], [1, 3], [1, 4], [1, 5]]


def test_keypoints_are_exact_with_occlusion_and_frame_edge(coco):
    anns = {a["track_id"]: a for a in coco["annotations"]}
    assert sorted(anns) == sorted(SCENE)
    for tid, (_, expected) in SCENE.items():
        got = np.array(anns[tid]["keypoints"], float).reshape(5, 3)
        want = np.array(expected, float)
        want[want[:, 2] > 0, :2] += 0.5  # the scene draws pixel i's centre at i; the labels put it at i + 0.5
        np.testing.assert_allclose(got[:, :2], want[:, :2], atol=2e-3, err_msg=f"track {tid}")
        assert got[:, 2].tolist() == [e[2] for e in expected], f"track {tid}: visibility {got[:, 2]}"
        assert anns[tid]["num_keypoints"] == sum(e[2] > 0 for e in expected)
    # Existing fields unchanged: the box is still the visible mask's.
    assert anns[4]["bbox"][1] > 460, "the bar hides the circle's top"
