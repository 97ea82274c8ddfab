"""A truncated input is reported, a normal one is not (issue 14, case 5), and a start past
the clip's end fails at open (case 16): real files through ``vidpipe run`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.options import StreamOptions

REPO = Path(__file__).resolve().parents[1]
FRAMES = 120


@pytest.fixture(scope="module")
def faststart_clip(tmp_path_factory) -> Path:
    """120 frames at 30 fps, 160×120, index (moov) at the start: a cut keeps the index."""
    out = tmp_path_factory.mktemp("truncated") / "full.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30",
                    "-frames:v", str(FRAMES), "-c:v", "libx264", "-g", "30", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(out)], check=True, timeout=60)
    return out


def vidpipe_run(workdir: Path, clip: Path, *extra: str, source: str = "", stream: str = "",
                top: str = "") -> tuple[subprocess.CompletedProcess, dict]:
    config = workdir / "run.yaml"
    config.write_text(f"streams: [{{id: cam0, source: {{type: file, path: {clip}{source}}}{stream}}}]\n"
                      f"model: {{intra_op_threads: 1}}\n{top}")
    summary = workdir / "summary.json"
    summary.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config), "--summary", str(summary), *extra],
                          cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=180)
    return proc, json.loads(summary.read_text()) if summary.exists() else {}


def test_a_file_cut_in_half_exits_1_naming_what_is_missing(faststart_clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    data = faststart_clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    proc, summary = vidpipe_run(tmp_path, cut)
    assert proc.returncode == 1, proc.stderr
    line = re.search(r"^vidpipe: error: stream cam0: input ended early: (\d+) of 120 frames \(truncated file\?\)$",
                     proc.stderr, re.M)
    assert line, proc.stderr
    read = int(line.group(1))
    assert FRAMES // 3 < read < FRAMES - 10
    assert "WARNING vidpipe.decoder: stream cam0: input ended early" in proc.stderr, "logged as a warning too"
    stream = summary["streams"]["cam0"]
    assert stream["truncated"] is True and stream["frames_expected"] == FRAMES
    assert stream["frames"] + sum(stream["drops"].values()) == read, "every frame read is a result or a counted drop"
    assert summary["results"] == stream["frames"] > 0, "what was read is kept"
    assert any("input ended early" in e for e in summary["errors"])


def test_a_whole_file_read_in_part_is_not_flagged(faststart_clip, tmp_path):
    """start_seconds, max_fps and infer_interval reduce the results legitimately."""
    proc, summary = vidpipe_run(tmp_path, faststart_clip, "-q", source=", start_seconds: 1.0",
                                stream=", max_fps: 10, infer_interval: 2", top="tracker: {type: bytetrack}\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    stream = summary["streams"]["cam0"]
    assert stream["truncated"] is False and stream["frames_expected"] == FRAMES - 30
    assert summary["results"] == 30 and summary["errors"] == []
    proc, summary = vidpipe_run(tmp_path, faststart_clip, "-q")
    assert proc.returncode == 0 and summary["results"] == FRAMES, proc.stderr
    assert summary["streams"]["cam0"]["truncated"] is False


def test_start_past_the_end_is_one_line_and_exit_2(faststart_clip, tmp_path):
    proc, summary = vidpipe_run(tmp_path, faststart_clip, "-q", source=", start_seconds: 9")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and summary == {}, proc.stderr
    assert lines[0].startswith("vidpipe: error: stream cam0: start_seconds 9 is past the end of ")
    assert "(4.00 s long, last frame at 3.97 s)" in lines[0]


def test_a_run_stopped_early_is_not_a_truncated_file(faststart_clip, model):
    """A paced file (a camera stand-in) stopped after a few results: the source ends on the
    stop, and that is not an input that ended early."""
    from pipeline import Pipeline
    from sources.config import FileSourceConfig
    from sources.file import VideoFileSource

    pipeline = Pipeline([VideoFileSource("cam0", FileSourceConfig(path=faststart_clip, realtime=True))], model)
    with pipeline:
        for n, _ in enumerate(pipeline, 1):
            if n == 5:
                pipeline.stop()
    stream = pipeline.summary()["streams"]["cam0"]
    assert stream["results"] < FRAMES and "truncated" not in stream, "not judged: the run was stopped"
    assert pipeline.problems == []


@pytest.mark.parametrize("fmt", ["matroska", "mpegts"])
def test_containers_without_a_frame_count_are_not_flagged(faststart_clip, model, tmp_path, fmt):
    """Matroska and MPEG-TS give no frame count: the expectation is duration × rate."""
    import av

    from pipeline import Pipeline
    from sources.config import FileSourceConfig
    from sources.file import VideoFileSource
    from tests.test_file_pacing import remux

    out = tmp_path / f"clip.{fmt}"
    remux(faststart_clip, out, fmt)
    with av.open(str(out)) as container:
        assert not container.streams.video[0].frames, "no count in the container"
    pipeline = Pipeline([VideoFileSource("cam0", FileSourceConfig(path=out))], model,
                        streams={"cam0": StreamOptions(max_fps=5)})
    with pipeline:
        results = list(pipeline)
    stream = pipeline.summary()["streams"]["cam0"]
    assert len(results) == 20 and stream["drops"] == {"max_fps": FRAMES - 20}
    assert stream["frames_expected"] == FRAMES and stream["truncated"] is False and pipeline.problems == []
