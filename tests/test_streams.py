"""Streams added, removed, paused and resumed while a pipeline runs (pipeline/app/streams.py),
with real parts: realtime (camera-paced) files, the test RTSP server, the bundled model,
real threads and file descriptors. Everything waits on conditions, never on time."""

from __future__ import annotations

import gc
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from pipeline import Pipeline
from pipeline.app.config import RingsConfig, load_stream_config
from pipeline.app.streams import REMOVED_KEPT
from pipeline.core.errors import ConfigError, PipelineFinishedError, SourceError, StreamError, StreamExistsError, UnknownStreamError
from pipeline.core.items import EndOfStream
from pipeline.infer.model import Model
from pipeline.track.config import TrackerConfig
from pipeline.zoo import default_model_path
from sinks.callback import CallbackSink
from sinks.files import OutputExists
from sources.factory import build_source
from sources.synthetic import write_clip
from tests.conftest import free_port


@pytest.fixture(scope="module")
def model():
    return Model.load(default_model_path(), intra_op_threads=2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """``paced``: 6 s at 5 fps (keyframe every second), looped in real time as a camera;
    ``short``: 3 frames, for add/remove cycles."""
    folder = tmp_path_factory.mktemp("stream-clips")
    paced, short = folder / "paced.mp4", folder / "short.mp4"
    write_clip(paced, None, 30, 3, width=320, height=180, fps=5, gop=5)
    write_clip(short, None, 3, 4, width=160, height=96, fps=10, gop=3)
    return {"paced": paced, "short": short}


def camera(sid: str, clip: Path, **options) -> dict:
    """A realtime looping file: a camera stand-in. Its frame ring blocks, so a slow moment
    never drops one of its frames and its frame indices are consecutive."""
    return {"id": sid, "source": {"type": "file", "path": str(clip), "realtime": True, "loop": True},
            "ring_policy": "block", **options}


def rtsp(sid: str, url: str) -> dict:
    return {"id": sid, "source": {"type": "rtsp", "url": url, "open_timeout": 2.0, "stall_timeout": 2.0,
                                  "backoff_initial": 0.2, "backoff_max": 0.5}}


class Recorder:
    """A callback sink that records results and ends in arrival order; waits on a condition."""

    def __init__(self, hook: Callable | None = None) -> None:
        self.cond = threading.Condition()
        self.items: list[tuple] = []  # ("r", stream, frame, gap) or ("end", stream, reason)
        self.hook = hook  # called with each result, on the sink's thread
        self.sink = CallbackSink(self._result, name="recorder", on_end=self._end)

    def _result(self, r) -> None:
        if self.hook is not None:
            self.hook(r)
        with self.cond:
            self.items.append(("r", r.stream_id, r.frame_index, r.gap))
            self.cond.notify_all()

    def _end(self, eos: EndOfStream) -> None:
        with self.cond:
            self.items.append(("end", eos.stream_id, eos.reason))
            self.cond.notify_all()

    def results(self, sid: str) -> list[tuple]:
        with self.cond:
            return [i for i in self.items if i[0] == "r" and i[1] == sid]

    def count(self, sid: str) -> int:
        return len(self.results(sid))

    def wait(self, what: Callable[[], bool], why: str, timeout: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(what, timeout), f"timed out waiting for {why}: {self.items[-5:]}"

    def wait_results(self, sid: str, n: int, timeout: float = 30.0) -> None:
        """Until ``sid`` has ``n`` results in all."""
        self.wait(lambda: sum(1 for i in self.items if i[0] == "r" and i[1] == sid) >= n, f"{n} results of {sid}", timeout)

    def wait_end(self, sid: str, timeout: float = 30.0) -> None:
        self.wait(lambda: any(i[0] == "end" and i[1] == sid for i in self.items), f"the end of {sid}", timeout)


def wait_for(check: Callable[[], bool], why: str, timeout: float = 30.0) -> None:
    """Until ``check()`` (a counter another thread moves, with no event to wait on)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {why}"
        pause.wait(0.02)


def build(model, streams: list[dict], sinks, **kw) -> Pipeline:
    cfgs = [load_stream_config(s) for s in streams]
    sources = [build_source(c.id, c.source) for c in cfgs]
    for s in sources:
        s.open()
    return Pipeline(sources, model, sinks, streams={c.id: c for c in cfgs}, **kw)


class Running:
    """``pipeline.run()`` in a thread; stopped and joined on exit."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.box: dict = {}
        self.thread = threading.Thread(target=self._run, name="test-run")

    def _run(self) -> None:
        try:
            self.box["summary"] = self.pipeline.run(handle_signals=False)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            self.box["error"] = exc

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.pipeline.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the pipeline did not stop"


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def consecutive(frames: list[int]) -> bool:
    return frames == list(range(frames[0], frames[0] + len(frames)))


def test_a_camera_added_then_removed_while_another_stream_runs(model, clips, rtsp_server):
    server = rtsp_server(fps=5)
    rec = Recorder()
    p = build(model, [camera("yard", clips["paced"])], [rec.sink])
    with Running(p):
        rec.wait_results("yard", 5)
        threads, open_fds = sorted(t.name for t in threading.enumerate()), fds()
        assert p.add_stream(rtsp("door", server.url)) == "door"
        rec.wait_results("door", 5)  # its results arrive
        final = p.remove_stream("door")  # drains, then returns with its threads joined
        # Released: its threads, its socket, its state everywhere; the summary keeps a final line.
        assert sorted(t.name for t in threading.enumerate()) == threads
        assert fds() == open_fds
        assert final is not None and final["state"] == "removed" and final["results"] >= 5
        assert "door" not in p.streams and "door" not in p.inference.inputs and "door" not in p.tracker.streams
        assert p.summary()["streams"]["door"]["state"] == "removed"
        states = [line for line in generate_latest(p.metrics.registry).decode().splitlines()
                  if line.startswith("vidpipe_stream_state{") and 'stream="door"' in line and line.endswith(" 1.0")]
        assert len(states) == 1 and 'state="removed"' in states[0], states
        after = rec.count("yard")
        rec.wait_results("yard", after + 5)
    items = list(rec.items)
    door = [i for i, item in enumerate(items) if item[1] == "door"]
    assert items[door[-1]] == ("end", "door", "removed"), "its end follows its last result"
    assert all(items[i][0] == "r" for i in door[:-1])
    first_door, door_end = door[0], door[-1]
    yard = [(i, item[2]) for i, item in enumerate(items) if item[0] == "r" and item[1] == "yard"]
    before = sum(i < first_door for i, _ in yard)
    during = sum(first_door < i < door_end for i, _ in yard)
    after = sum(i > door_end for i, _ in yard)
    assert before >= 5 and during >= 1 and after >= 5, (before, during, after)
    assert consecutive([f for _, f in yard]), "the first stream never paused nor lost a frame"
    assert not p.errors


def test_pause_and_resume_streams_and_the_pipeline(model, clips, small_clip):
    paused_at: list[int] = []

    def pause_midway(r) -> None:  # on the sink's thread: a pause never waits
        if r.stream_id == "file" and r.frame_index == 10:
            p.pause_stream("file")
            paused_at.append(p.streams["file"].packets)

    rec = Recorder(pause_midway)
    p = build(model, [camera("cam", clips["paced"]), {"id": "file", "source": {"type": "file", "path": str(small_clip)}}],
              [rec.sink], rings=RingsConfig(packets=4, frames=2))  # the file is read not far ahead of its results
    p.pause_stream("file")  # before the start: it starts paused
    with Running(p):
        rec.wait_results("cam", 5)
        assert p.streams["file"].packets == 0 and p.summary()["streams"]["file"]["state"] == "paused"
        p.resume_stream("file")
        rec.wait(lambda: bool(paused_at), "the pause at frame 10")
        n = rec.count("cam")
        rec.wait_results("cam", n + 5)  # a paused file is not read
        assert p.streams["file"].packets <= paused_at[0] + 1 < 40  # (+1: the packet being read when it paused)
        p.resume_stream("file")
        rec.wait_end("file", timeout=60)
        # A paused file resumes where it stopped: every frame, in order.
        assert [r[2] for r in rec.results("file")] == list(range(40))

        # A live source keeps reading while paused and drops what it reads.
        p.pause_stream("cam")
        last = rec.results("cam")[-1][2]
        wait_for(lambda: p.streams["cam"].drops_snapshot().get("paused", 0) >= 5, "5 frames dropped while paused")
        assert p.summary()["streams"]["cam"]["state"] == "paused"
        p.resume_stream("cam")
        wait_for(lambda: any(r[2] > last and r[3] for r in rec.results("cam")), "a result after the resume")
        resumed = next(r for r in rec.results("cam") if r[3])
        assert resumed[2] - last > 5, "the frames read while paused were dropped, not queued"

        # The whole pipeline: a stream paused on its own stays paused when the pipeline resumes;
        # a stream added while the pipeline is paused starts paused.
        p.pause()
        p.add_stream(camera("late", clips["paced"]))
        wait_for(lambda: p.streams["late"].drops_snapshot().get("paused", 0) >= 3, "the new stream paused")
        assert rec.count("late") == 0 and p.streams["cam"].shown_state == "paused"
        p.pause_stream("cam")
        p.resume()
        rec.wait_results("late", 3)
        assert p.streams["cam"].shown_state == "paused"
        p.resume_stream("cam")
        n = rec.count("cam")
        rec.wait_results("cam", n + 3)
    assert not p.errors


def test_bad_requests_are_clear_errors_and_running_streams_carry_on(model, clips, tmp_path):
    rec = Recorder()
    p = build(model, [camera("cam", clips["paced"])], [rec.sink])
    with Running(p):
        rec.wait_results("cam", 3)
        with pytest.raises(StreamExistsError, match="cannot add stream 'cam'") as exists:
            p.add_stream(camera("cam", clips["paced"]))
        assert isinstance(exists.value, ValueError)
        for call in (p.remove_stream, p.pause_stream, p.resume_stream):
            with pytest.raises(UnknownStreamError, match="no stream 'nope'.*streams: 'cam'"):
                call("nope")
        with pytest.raises(ConfigError, match="stream 'x' at source.path: Field required"):
            p.add_stream({"id": "x", "source": {"type": "file"}})
        with pytest.raises(ConfigError, match="stream 'x' at infer_interval"):
            p.add_stream({**camera("x", clips["paced"]), "infer_interval": 3})  # no tracker to carry the frames
        with pytest.raises(ConfigError, match="expected a mapping"):
            p.add_stream("cam2")  # type: ignore[arg-type]
        with pytest.raises(SourceError, match=re.escape(f"stream 'x': video file not found: {tmp_path / 'no.mp4'}")):
            p.add_stream({"id": "x", "source": {"type": "file", "path": str(tmp_path / "no.mp4")}})
        # A camera that never answers is retried in its own thread; the others run on.
        p.add_stream(rtsp("dead", f"rtsp://127.0.0.1:{free_port()}/cam"))
        n = rec.count("cam")
        rec.wait_results("cam", n + 10)
        assert p.streams["dead"].state in ("connecting", "reconnecting") and rec.count("dead") == 0
        assert p.remove_stream("dead", drain=False)["state"] == "removed"
        with pytest.raises(UnknownStreamError):
            p.remove_stream("dead")
        n = rec.count("cam")
        rec.wait_results("cam", n + 3)
    assert p.finished and not p.errors
    assert ("end", "dead", "removed") in rec.items
    for call, args in ((p.add_stream, (camera("x", clips["paced"]),)), (p.remove_stream, ("cam",)),
                       (p.pause_stream, ("cam",)), (p.pause, ())):
        with pytest.raises(PipelineFinishedError, match="has finished"):
            call(*args)


def test_keep_alive_waits_for_streams_and_iterates_their_ends(model, clips, small_clip):
    p = Pipeline([], model, keep_alive=True)
    p.add_stream({"id": "one", "source": {"type": "file", "path": str(small_clip)}})  # before the start
    seen: dict[str, list] = {"one": [], "two": []}
    ends = []
    for item in p.results(events=True):
        if isinstance(item, EndOfStream):
            ends.append((item.stream_id, item.reason))
            if item.stream_id == "one":
                assert not p.finished, "keep_alive: the pipeline waits for more streams"
                assert p.remove_stream("one")["results"] == 40  # it had ended: released at once
                p.add_stream(camera("two", clips["paced"]))
            else:
                p.stop()
            continue
        seen[item.stream_id].append(item.frame_index)
        if item.stream_id == "two" and len(seen["two"]) == 5:
            # The iterating thread must go on for the end to pass: the call does not wait.
            assert p.remove_stream("two") is None
    assert ends == [("one", "eos"), ("two", "removed")]
    assert seen["one"] == list(range(40)) and len(seen["two"]) >= 5 and consecutive(seen["two"])
    summary = p.summary()
    assert summary["results"] == 40 + len(seen["two"])
    assert summary["streams"]["one"]["state"] == summary["streams"]["two"]["state"] == "removed"
    assert p.streams == {} and not p.errors


def test_a_stream_removed_before_the_start_never_runs(model, clips):
    p = build(model, [camera("a", clips["paced"]), camera("b", clips["paced"])], [])
    final = p.remove_stream("b")
    assert final["state"] == "removed" and final["packets"] == 0
    assert p.sources[0].source.stream_id == "a" and len(p.sources) == 1
    with pytest.raises(StreamError):
        p.remove_stream("b")
    p.remove_stream("a")  # closes its file
    assert p.streams == {} and p.sources == [] and [r.name for r in p.rings] == ["results"]


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def test_fifty_add_remove_cycles_leave_nothing_behind(model, clips):
    rec = Recorder()
    p = Pipeline([], model, [rec.sink], keep_alive=True, tracker=TrackerConfig(type="bytetrack"))

    def cycle(i: int) -> None:
        sid = f"c{i}"
        p.add_stream({"id": sid, "source": {"type": "file", "path": str(clips["short"])}})
        if i % 2:
            rec.wait_end(sid)  # ended by itself, then removed
            p.remove_stream(sid)
        else:
            p.remove_stream(sid, drain=False)  # aborted at once

    with Running(p):
        for i in range(5):  # warm-up: allocator pools, first-use caches
            cycle(i)
        gc.collect()
        rss, threads, open_fds = _rss_kb(), len(threading.enumerate()), fds()
        for i in range(5, 55):
            cycle(i)
        gc.collect()
        grown_kb = _rss_kb() - rss
        assert len(threading.enumerate()) == threads and fds() == open_fds
        assert p.streams == {} and p.inference.inputs == {} and p.tracker.trackers == {} and p.metrics.windows == {}
        assert [r.name for r in p.rings] == ["results", "sink:recorder"]
        assert len(p.control.removed) == min(55, REMOVED_KEPT)
    assert grown_kb < 5 * 1024, f"RSS grew by {grown_kb / 1024:.1f} MB over 50 cycles"
    ends = [i for i in rec.items if i[0] == "end"]
    assert sorted(int(i[1][1:]) for i in ends) == list(range(55)), "one end per stream"
    assert all(rec.count(f"c{i}") == 3 for i in range(1, 55, 2))
    assert not p.errors


def test_an_added_streams_outputs_are_checked_like_a_runs(tmp_path):
    clip = tmp_path / "in" / "cam1.mp4"
    write_clip(clip, None, 2, 5, width=160, height=96)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.mp4").write_bytes(b"an earlier run's video")
    synthetic = {"type": "synthetic", "frames": 2, "width": 160, "height": 96}
    p = Pipeline.from_config({"streams": [], "keep_alive": True, "model": {"intra_op_threads": 1},
                              "sinks": [{"type": "video", "path": str(tmp_path / "out" / "{stream}.mp4")},
                                        {"type": "video", "path": str(tmp_path / "in" / "{stream}.mp4")}]})
    p.add_stream({"id": "new", "source": synthetic})
    with pytest.raises(OutputExists, match="sinks.0 .*old.mp4 exists"):
        p.add_stream({"id": "old", "source": synthetic})  # its video would replace an earlier run's
    with pytest.raises(ConfigError, match="an output never replaces an input"):
        p.add_stream({"id": "cam1", "source": {"type": "file", "path": str(clip)}})  # sinks.1 would write its input
    assert list(p.streams) == ["new"]
    single = Pipeline.from_config({"streams": [{"id": "a", "source": synthetic}], "model": {"intra_op_threads": 1},
                                   "sinks": [{"type": "video", "path": str(tmp_path / "one.mp4")}]})
    with pytest.raises(ConfigError, match="has no '{stream}'.*stream 'b' cannot join"):
        single.add_stream({"id": "b", "source": synthetic})
    for pipeline in (p, single):
        for sid in list(pipeline.streams):
            pipeline.remove_stream(sid)
