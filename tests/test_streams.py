"""Streams added and removed while a pipeline runs (pipeline/app/streams.py), with real
parts: realtime (camera-paced) files, the test RTSP server, the bundled model, real
threads and file descriptors. Everything waits on conditions, never on time. (Pausing:
tests/test_stream_pause.py.)"""

from __future__ import annotations

import gc
import re
import threading

import pytest
from prometheus_client import generate_latest

from pipeline import Pipeline
from pipeline.app.streams import REMOVED_KEPT
from pipeline.core.errors import ConfigError, PipelineFinishedError, SourceError, StreamError, StreamExistsError, UnknownStreamError
from pipeline.core.items import EndOfStream
from pipeline.track.config import TrackerConfig
from sinks.files import OutputExists
from sources.synthetic import write_clip
from tests.conftest import free_port
from tests.stream_helpers import Recorder, Running, build, camera, consecutive, fds, rtsp


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
        assert final["results"] == rec.count("door") and "removed" not in final["drops"]  # drained: nothing discarded
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
