"""The client's async twins and ``infer_on_stream`` against a real ``vidpipe serve``: each
``*_async`` route answers as its sync twin, parallel async requests keep their order, and
a video file and an image folder stream (reference, image, answer) with answers equal to
in-process inference on the same frames."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.client import HTTPCallErrorError, InferenceConfiguration, InferenceHTTPClient, InvalidInputFormatError
from tests.conftest import _clip
from tests.serve_process import ServeProcess
from tests.test_client import EXACT, MODEL, assert_same, stopped_cleanly


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServeProcess(tmp_path_factory.mktemp("serve")).start()
    yield proc.url
    stopped_cleanly(proc)


@pytest.fixture(scope="module")
def short_clip(media_dir) -> Path:
    """12 frames, 640×360: enough to stream, quick to infer."""
    return _clip(media_dir, "client-short", 12, 11, "640x360")[0]


@pytest.fixture
def client(server):
    with InferenceHTTPClient(server) as c:
        yield c


def test_async_twins_of_every_route(client, small_clip):
    cap = cv2.VideoCapture(str(small_clip))
    frames = [cap.read()[1] for _ in range(4)]
    cap.release()

    async def scenario():
        info = await client.get_server_info_async()
        cleared = await client.unload_all_models_async()
        loaded = await client.load_model_async(MODEL, set_as_default=True)
        listed = await client.list_loaded_models_async()
        described = await client.get_model_description_async(MODEL)
        cfg = InferenceConfiguration(max_batch_size=1, max_concurrent_requests=4)
        with client.use_configuration(cfg):
            sizes = [(360, 640), (200, 300), (240, 320), (100, 180)]
            answers = await client.infer_async([cv2.resize(f, (w, h)) for f, (h, w) in zip(frames, sizes)])
        one = await client.infer_async(frames[0])
        removed = await client.unload_model_async(MODEL)
        with pytest.raises(HTTPCallErrorError) as err:
            await client.unload_model_async(MODEL)
        return info, cleared, loaded, listed, described, answers, sizes, one, removed, err.value

    info, cleared, loaded, listed, described, answers, sizes, one, removed, err = asyncio.run(scenario())
    assert info == client.get_server_info()
    assert cleared.models == [] and [m.model_id for m in loaded.models] == [MODEL] == [m.model_id for m in listed.models]
    assert described.task_type == "instance-segmentation"
    assert [(a["image"]["height"], a["image"]["width"]) for a in answers] == sizes
    assert one["image"] == {"width": 640, "height": 360} and one["predictions"]
    assert removed.models == [] and client.selected_model is None
    assert err.status_code == 404


def test_infer_on_stream_of_a_video_equals_in_process(client, model, short_clip):
    cap = cv2.VideoCapture(str(short_clip))
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(frame)
    cap.release()
    with client.use_configuration(dataclasses.replace(EXACT, max_concurrent_requests=4)):
        streamed = list(client.infer_on_stream(str(short_clip), model_id=MODEL))
    assert [ref for ref, _, _ in streamed] == list(range(len(decoded))) and len(decoded) == 12
    for index in (0, 5, 11):
        ref, frame, answer = streamed[index]
        assert np.array_equal(frame, decoded[index])
        assert_same(answer, model.infer([frame])[0])


def test_infer_on_stream_of_an_image_folder(client, small_clip, tmp_path):
    cap = cv2.VideoCapture(str(small_clip))
    for name in ("b.png", "a.jpg", "c.PNG"):
        assert cv2.imwrite(str(tmp_path / name), cap.read()[1])
    cap.release()
    (tmp_path / "notes.txt").write_text("not an image")
    streamed = list(client.select_model(MODEL).infer_on_stream(str(tmp_path)))
    assert [Path(ref).name for ref, _, _ in streamed] == ["a.jpg", "b.png", "c.PNG"]
    assert all(img.shape == (360, 640, 3) and answer["image"] == {"width": 640, "height": 360} for _, img, answer in streamed)
    with pytest.raises(InvalidInputFormatError, match="no such file or folder"):
        next(client.infer_on_stream(str(tmp_path / "missing")))
