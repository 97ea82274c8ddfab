"""What the runtime-stream tests share (tests/test_streams.py, tests/test_stream_pause.py):
stream entries, a recording sink that waits on a condition, a pipeline run in a thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import Pipeline
from pipeline.app.config import load_stream_config
from pipeline.core.items import EndOfStream
from sinks.callback import CallbackSink
from sources.factory import build_source
from sources.synthetic import write_clip


def make_clips(folder: Path) -> dict[str, Path]:
    """``paced``: 3 s at 5 fps (keyframe every second), looped in real time as a camera (a pause
    often spans a loop);
    ``short``: 3 frames, for add/remove cycles."""
    paced, short = folder / "paced.mp4", folder / "short.mp4"
    write_clip(paced, None, 15, 3, width=320, height=180, fps=5, gop=5)
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
