"""Re-identification by appearance: a lost object that comes back away from where its motion
put it keeps its id when its colour matches (and only then), and an object that left the
frame is not re-identified with another of its colour coming in."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from pipeline.track.appearance import colour_distance, mean_colours
from pipeline.track.bytetrack import ByteTrack
from pipeline.track.config import TrackerConfig
from pipeline.vision.detections import Detections

HW = (720, 1280)
ORANGE, BLUE, BACKGROUND = (40, 140, 230), (220, 90, 30), (90, 90, 90)


def _frame(objects: list[tuple[list[float], tuple[int, int, int]]], masks: bool = True) -> tuple[Detections, np.ndarray]:
    """Detections of ``objects`` (box, BGR colour), painted on a grey frame."""
    image = np.full((*HW, 3), BACKGROUND, np.uint8)
    for box, colour in objects:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        image[max(0, y0):y1, max(0, x0):x1] = colour
    boxes = [b for b, _ in objects]
    dets = Detections(np.array(boxes, np.float32).reshape(-1, 4), [0.9] * len(objects), [0] * len(objects), HW)
    if masks:
        dets = Detections(dets.xyxy, dets.confidence, dets.class_id, HW,
                          masks=[np.ones((b[3] - b[1], b[2] - b[0]), bool) for b in dets.mask_boxes.tolist()])
    return dets, image


def test_mean_colours_match_numpy_inside_masks_and_box_centres():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*HW, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 90, 70], [1200, 600, 1280, 720], [500, 300, 501, 301]], np.float32)
    masks = [rng.random((b[3] - b[1], b[2] - b[0])) > 0.5 for b in boxes.astype(int)]
    masks[1] = np.asfortranarray(masks[1])  # the pipeline's masks are often Fortran-ordered views
    masks[2][:] = False  # nothing visible: unknown
    got = mean_colours(image, Detections(boxes, [0.9] * 3, [0] * 3, HW, masks=masks))
    for i, step in ((0, 3), (1, 6)):  # 80×50 and 80×120 pixels: every 3rd and 6th row and column (about SAMPLES)
        x0, y0, x1, y1 = boxes[i].astype(int)
        sampled = image[y0:y1:step, x0:x1:step][masks[i][::step, ::step]]
        np.testing.assert_allclose(got[i], sampled.mean(axis=0), rtol=1e-9)
        assert np.abs(got[i] - image[y0:y1, x0:x1][masks[i]].mean(axis=0)).max() < 16  # near every pixel's mean (3 sigma of this noise)
    assert np.isnan(got[2]).all()
    as_numbers = mean_colours(image, Detections(boxes[:1], [0.9], [0], HW, masks=[masks[0].astype(np.uint8)]))
    np.testing.assert_array_equal(as_numbers[0], got[0])
    # Without masks: the central half of each box (the object, not the background around it).
    plain = mean_colours(image, Detections(boxes[:1], [0.9], [0], HW))
    np.testing.assert_allclose(plain[0], image[32:58:2, 30:70:2].reshape(-1, 3).mean(axis=0), rtol=1e-9)
    assert colour_distance(got[:1], got[2:]).tolist() == [[np.inf]]
    with pytest.raises(ValueError, match="H×W×3 uint8 BGR frame, got float32"):
        mean_colours(image.astype(np.float32), Detections(boxes[:1], [0.9], [0], HW))


def _run(scene: Callable[[int], list], frames: int, config: TrackerConfig | None = None, masks: bool = True,
         give_frames: bool = True) -> Iterator[tuple[ByteTrack, list[int]]]:
    """``scene(t)`` (frame t's objects) through one tracker: after each frame, the tracker
    and the frame's ids."""
    tracker = ByteTrack(config or TrackerConfig(), fps=30)
    for t in range(frames):
        dets, image = _frame(scene(t), masks)
        yield tracker, tracker.update(dets, image if give_frames else None).tracker_id.tolist()


def _turned(colour_back: tuple[int, int, int], back: Callable[[float], list[float]] = lambda x: [x, 450.0, x + 60, 510.0],
            extra: Callable[[int], list] = lambda t: []) -> Callable[[int], list]:
    """An orange object moves right at 4 px/frame for 15 frames, is unseen for 45 (1.5 s),
    and comes back at ``back(x)`` (by default 150 px below where its motion puts it: it
    turned while hidden), painted ``colour_back``; a blue object stays in view all along."""
    def scene(t: int) -> list:
        objects = [([900.0, 100.0 + t, 960.0, 160.0 + t], BLUE), *extra(t)]
        if t < 15:
            objects.insert(0, ([200.0 + 4 * t, 300.0, 260.0 + 4 * t, 360.0], ORANGE))
        elif t >= 60:
            objects.insert(0, (back(200.0 + 4 * t), colour_back))
        return objects
    return scene


def _turned_behind_something(config: TrackerConfig, colour_back: tuple[int, int, int], masks: bool = True,
                             give_frames: bool = True) -> list[int]:
    """The turned object's ids before it is lost and after it is back."""
    ids = [out[0] for _, out in _run(_turned(colour_back), 75, config, masks, give_frames)]
    return [ids[14], ids[74]]


@pytest.mark.parametrize("masks", [True, False])
def test_a_lost_object_that_turned_keeps_its_id_by_its_colour(masks):
    before, after = _turned_behind_something(TrackerConfig(), ORANGE, masks)
    assert before >= 1 and after == before


def test_another_colour_or_no_frame_gets_a_new_id():
    before, after = _turned_behind_something(TrackerConfig(), BLUE)
    assert after not in (before, -1)
    before, after = _turned_behind_something(TrackerConfig(), ORANGE, give_frames=False)  # motion alone: too far
    assert after not in (before, -1)
    before, after = _turned_behind_something(TrackerConfig(appearance=False), ORANGE)
    assert after not in (before, -1)


def test_an_object_that_left_the_frame_is_not_taken_for_one_coming_in():
    def scene(t: int) -> list:
        if t < 20:  # leaves through the right edge at 8 px/frame
            return [([1160.0 + 8 * t, 300.0, 1220.0 + 8 * t, 360.0], ORANGE)]
        if t >= 30:  # another orange object comes in at the same place, moving left
            x = 1280.0 - 8 * (t - 30)
            return [([x, 300.0, min(x + 60, 1280.0), 360.0], ORANGE)]
        return []

    ids = [out for _, out in _run(scene, 60)]
    first, second = ids[10][0], ids[59][0]
    assert first >= 1 and second not in (first, -1)


def test_colours_stay_in_step_with_tracks_and_a_much_larger_box_is_not_taken():
    # A one-frame false positive spawns and drops a tentative track between the frames:
    # the colours must be dropped with it, or the orange track would read another's colour.
    scene = _turned(ORANGE, back=lambda x: [x - 40, 410.0, x + 100, 550.0],  # boxed far larger than it ever was
                    extra=lambda t: [([50.0, 600.0, 90.0, 640.0], (0, 200, 0))] if t in (20, 40) else [])
    ids = []
    for tracker, out in _run(scene, 75):
        assert len(tracker.colour) == len(tracker)
        ids.append(out[0])
    assert ids[74] not in (ids[14], -1), "a box over twice the object's area is another object, whatever its colour"


def test_the_kernel_is_ready_before_the_first_frame_for_any_layout():
    from pipeline.track import appearance

    compiled = len(appearance._masked_mean.signatures)
    padded = np.zeros((576, 768, 3), np.uint8)[:, :720]  # PyAV's rows are padded at some widths
    dets = Detections([[10, 10, 20, 30]], [0.9], [0], (576, 720), masks=[np.asfortranarray(np.ones((20, 10), bool))])
    mean_colours(padded, dets)
    assert len(appearance._masked_mean.signatures) == compiled == 1


def test_the_pipeline_gives_the_tracker_its_frames(model, monkeypatch):
    from pipeline import Pipeline
    from sources.config import SyntheticSourceConfig
    from sources.synthetic import SyntheticSource

    shapes = []
    update = ByteTrack.update

    def spy(self, dets, image=None):
        shapes.append(None if image is None else image.shape)
        return update(self, dets, image)

    monkeypatch.setattr(ByteTrack, "update", spy)
    source = SyntheticSource("s", SyntheticSourceConfig(seed=1, frames=4, width=320, height=180))
    with Pipeline([source], model, tracker=TrackerConfig()) as pipeline:
        assert len(list(pipeline)) == 4
    assert shapes == [(180, 320, 3)] * 4


def test_a_track_follows_its_colour_as_the_light_changes():
    # The object brightens by 1 a frame while seen (60 in all, over twice the threshold):
    # the track's colour must follow it, or the object returning in its last colour is lost.
    def scene(t: int) -> list:
        colour = (40, 140, 170 + min(t, 59))
        objects = [([900.0, 100.0, 960.0, 160.0], BLUE)]
        if t < 60:
            objects.insert(0, ([200.0 + 4 * t, 300.0, 260.0 + 4 * t, 360.0], colour))
        elif t >= 85:  # back 150 px below where its motion puts it
            objects.insert(0, ([200.0 + 4 * t, 450.0, 260.0 + 4 * t, 510.0], colour))
        return objects

    ids = [out for _, out in _run(scene, 100)]
    assert ids[59][0] >= 1 and ids[99][0] == ids[59][0]


def test_of_two_look_alikes_the_one_nearer_where_it_should_be_takes_the_id():
    def scene(t: int) -> list:
        if t < 15:
            return [([200.0 + 4 * t, 300.0, 260.0 + 4 * t, 360.0], ORANGE)]
        if t >= 60:  # both orange, both within reach: the far one listed first
            x = 200.0 + 4 * t
            return [([x, 560.0, x + 60, 620.0], ORANGE), ([x, 420.0, x + 60, 480.0], ORANGE)]
        return []

    ids = [out for _, out in _run(scene, 75)]
    first, (far, near) = ids[14][0], ids[74]
    assert near == first and far != first
