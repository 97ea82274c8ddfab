"""Streams paused and resumed, one by one and all together, while a pipeline runs: a file
stops being read and loses nothing; a live source (a camera-paced file) reads and drops."""

from __future__ import annotations

from pipeline.app.config import RingsConfig
from tests.stream_helpers import Recorder, Running, build, camera, wait_for


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
