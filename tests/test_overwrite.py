"""A second run never silently replaces the first one's results, a killed replacement run
leaves the old results whole, path templates and folders fail at start, and a sink that
fails results makes the run exit 1 (issue 14, cases 3 and 16): the real CLI on real files."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = {"type": "synthetic", "seed": 3, "frames": 20, "width": 320, "height": 180, "fps": 10}


def _vidpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline", "run", *args, "-q"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _config(folder: Path, sinks: list[dict], source: dict | None = None) -> Path:
    cfg = {"streams": [{"id": "cam0", "source": source or SOURCE}], "model": {"intra_op_threads": 1},
           "rings": {"sink": 2}, "sinks": sinks}
    path = folder / "p.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def _playable(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


SINKS = [{"type": "jsonl", "path": "out/r.jsonl"}, {"type": "video", "path": "out/{stream}.mp4"},
         {"type": "masks", "path": "out/masks/{stream}/{frame:04d}.png"},
         {"type": "jsonl", "path": "out/log.jsonl", "mode": "append"}]


def test_a_second_run_is_refused_until_told_and_append_appends(tmp_path):
    cfg = _config(tmp_path, SINKS)
    assert _vidpipe(str(cfg), cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    first = {p: _sha(out / p) for p in ("r.jsonl", "cam0.mp4", "log.jsonl", "masks/cam0/0000.png")}
    again = _vidpipe(str(cfg), cwd=tmp_path)
    assert again.returncode == 2, again.stderr
    assert again.stderr.strip().splitlines() == [
        "vidpipe: error: sink sinks.0 (jsonl): out/r.jsonl exists: set overwrite: true on the sink (or run with --overwrite)"]
    assert {p: _sha(out / p) for p in first} == first  # nothing was opened
    for i in (0, 2):  # every file sink refuses on its own
        sinks = [{**s, "overwrite": True} if j != i else s for j, s in enumerate(SINKS)]
        proc = _vidpipe(str(_config(tmp_path, sinks)), cwd=tmp_path)
        assert proc.returncode == 2 and f"sinks.{i} (" in proc.stderr and "exists" in proc.stderr, proc.stderr
    forced = _vidpipe(str(cfg), "--overwrite", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert _lines(out / "r.jsonl") == 20 and _playable(out / "cam0.mp4") == 20
    assert _lines(out / "log.jsonl") == 40  # appended to, never replaced
    assert len(list((out / "masks" / "cam0").glob("*.png"))) == 20
    assert not list(out.rglob("*.partial"))


def test_a_killed_overwrite_keeps_the_old_results_and_leaves_the_new_as_partial(tmp_path):
    sinks = [{"type": "jsonl", "path": "out/r.jsonl", "overwrite": True}, {"type": "video", "path": "out/{stream}.mp4"}]
    assert _vidpipe(str(_config(tmp_path, sinks)), cwd=tmp_path).returncode == 0
    old = {p: _sha(tmp_path / "out" / p) for p in ("r.jsonl", "cam0.mp4")}
    endless = {**SOURCE, "frames": None}  # runs until killed
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(_config(tmp_path, sinks, endless)), "-q", "--overwrite"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "out" / "r.jsonl.partial"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not partial.exists() or _lines(partial) < 30):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)  # polling a file another process writes
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert {p: _sha(tmp_path / "out" / p) for p in old} == old  # the first run's results, whole
    lines = partial.read_text().splitlines()
    assert len(lines) >= 30 and all(json.loads(x)["stream"] == "cam0" for x in lines[:-1])
    assert _playable(tmp_path / "out" / "cam0.mp4.partial") >= 10  # the new video plays up to its last fragment


def test_an_unknown_template_field_or_an_impossible_folder_fails_at_start(tmp_path):
    proc = _vidpipe(str(_config(tmp_path, [{"type": "video", "path": "out/{date}/{stream}.mp4"}])), cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "sinks.0.path" in proc.stderr and "{date}" in proc.stderr and "the known fields: {stream}" in proc.stderr
    (tmp_path / "blocker").write_text("a file, not a folder")
    proc = _vidpipe(str(_config(tmp_path, [{"type": "video", "path": "blocker/{stream}.mp4"}])), cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "sinks.0 (video): cannot create the folder of blocker/cam0.mp4" in proc.stderr
    deep = [{"type": "video", "path": "out/a/b/{stream}.mp4"}]  # a missing folder is made
    assert _vidpipe(str(_config(tmp_path, deep)), cwd=tmp_path).returncode == 0
    assert _playable(tmp_path / "out" / "a" / "b" / "cam0.mp4") == 20


def refuse(result) -> None:
    raise OSError(f"no room for frame {result.frame_index}")


def test_a_sink_failing_results_makes_the_run_exit_1_with_its_error(tmp_path):
    sinks = [{"type": "jsonl", "path": "out/r.jsonl"}, {"type": "callback", "target": "tests.test_overwrite:refuse"}]
    proc = _vidpipe(str(_config(tmp_path, sinks)), "--summary", "out/summary.json", cwd=tmp_path)
    assert proc.returncode == 1
    problem = "sink callback:refuse failed 20 of 20 results: no room for frame 0"  # name, counts, the first error
    assert f"vidpipe: error: {problem}" in proc.stderr.splitlines()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["errors"] == [problem]
    assert _lines(tmp_path / "out" / "r.jsonl") == 20  # the healthy sink delivered everything


def test_the_python_api_refuses_the_same_way(model, small_clip, tmp_path):
    from pipeline import Pipeline
    from sinks.config import JsonlSinkConfig, VideoSinkConfig
    from sinks.files import OutputExists
    from sinks.jsonl import JsonlSink
    from sinks.video import AnnotatedVideoSink
    from sources.config import FileSourceConfig
    from sources.file import VideoFileSource

    def pipeline(**options) -> Pipeline:
        source = VideoFileSource("cam0", FileSourceConfig(path=small_clip))
        sinks = [JsonlSink(JsonlSinkConfig(path=tmp_path / "r.jsonl", **options)),
                 AnnotatedVideoSink(VideoSinkConfig(path=str(tmp_path / "{stream}.mp4"), **options))]
        return Pipeline([source], model, sinks)

    pipeline().run(handle_signals=False)
    first = {p: _sha(tmp_path / p) for p in ("r.jsonl", "cam0.mp4")}
    for name in first:  # either existing file alone is refused when the pipeline starts
        other = tmp_path / ("cam0.mp4" if name == "r.jsonl" else "r.jsonl")
        other.rename(tmp_path / "aside")
        with pytest.raises(OutputExists, match=name):
            pipeline().run(handle_signals=False)
        assert not other.exists(), "a run refused at start leaves no empty file to refuse the next one"
        (tmp_path / "aside").rename(other)
    assert {p: _sha(tmp_path / p) for p in first} == first
    pipeline(overwrite=True).run(handle_signals=False)
    assert _lines(tmp_path / "r.jsonl") == 40 and _playable(tmp_path / "cam0.mp4") == 40
    assert not list(tmp_path.glob("*.partial"))
