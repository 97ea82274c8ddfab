"""The cluster worker in this process (no Ray): a file stream added with ``resume_after``
gives exactly the frames after it, whether it can seek by frame (constant rate), cannot
(variable rate: read from the start, earlier results dropped) or has nothing left."""

from __future__ import annotations

import time

from pipeline.app.cluster.worker import PipelineWorker
from tests.test_source_positions import FRAMES, bframe_clip, vfr_clip  # noqa: F401  (fixtures)

CONFIG = {"model": {"path": "shapes-yolov8seg", "intra_op_threads": 1}}


def _drain(worker: PipelineWorker, sid: str, timeout: float = 60.0) -> tuple[list[int], str]:
    """The frame indices taken for ``sid`` until its end, and the end's reason."""
    frames: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in worker.take(512, 0.2):
            if item[0] == "result" and item[1].stream_id == sid:
                frames.append(item[1].frame_index)
                assert item[1].image is None, "frames stay on the worker unless a sink draws"
            elif item[0] == "end" and item[1] == sid:
                return frames, item[2]
    raise AssertionError(f"no end of {sid} in {timeout:g} s (got {frames})")


def test_resume_after_a_frame(bframe_clip, vfr_clip):  # noqa: F811
    import ray

    worker = PipelineWorker(CONFIG)  # one worker, its model loaded once, for the three cases
    try:
        assert worker.ready()["error"] is None
        assert not ray.is_initialized(), "asking the worker where it runs must not start a local Ray"
        # A constant-rate file seeks to the next frame (mid-GOP, B-frames).
        assert worker.add({"id": "cfr", "source": {"type": "file", "path": str(bframe_clip)}}, resume_after=20) == "added"
        assert _drain(worker, "cfr") == (list(range(21, FRAMES)), "eos")
        worker.forget("cfr")
        # A variable-rate one cannot: it is read from its start and the earlier results dropped.
        assert worker.add({"id": "vfr", "source": {"type": "file", "path": str(vfr_clip)}}, resume_after=9) == "added"
        assert _drain(worker, "vfr") == (list(range(10, 24)), "eos")
        worker.forget("vfr")
        # Nothing after the last frame: it ends at once.
        last = {"id": "done", "source": {"type": "file", "path": str(bframe_clip)}}
        assert worker.add(last, resume_after=FRAMES - 1) == "ended"
        assert _drain(worker, "done") == ([], "eos")
        assert worker.take(10, 0.05) == [], "an empty take answers within its wait (the heartbeat)"
    finally:
        worker.close()


def test_a_worker_that_cannot_load_its_model_says_why():
    w = PipelineWorker({"model": {"path": "/nowhere/model.onnx"}})
    try:
        assert "/nowhere/model.onnx" in w.ready()["error"]
    finally:
        w.close()


def test_a_worker_runs_onnx_runtime_on_the_cpus_it_reserves():
    # Unset, ONNX Runtime would take every core of the node in each worker; the
    # reservation sizes it. A thread count the user set is kept.
    from pipeline.app.cluster.worker import worker_config
    from pipeline.app.config import load_config_dict

    cfg = load_config_dict({"keep_alive": True, "streams": [], "model": {"path": "shapes-yolov8seg"}})
    for num_cpus, threads in ((0.5, 1), (1.0, 1), (3.0, 3)):
        assert worker_config(cfg, num_cpus)["model"]["intra_op_threads"] == threads
    explicit = load_config_dict({"keep_alive": True, "streams": [],
                                 "model": {"path": "shapes-yolov8seg", "intra_op_threads": 2}})
    assert worker_config(explicit, 1.0)["model"]["intra_op_threads"] == 2
    worker = PipelineWorker(worker_config(cfg, 1.0))
    try:
        assert worker.ready()["error"] is None
        assert worker.pipeline is not None
        session = worker.pipeline.model.backend.session
        assert session.get_session_options().intra_op_num_threads == 1
    finally:
        worker.close()
