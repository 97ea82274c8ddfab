"""The annotated mp4 keeps the source's timing, constant or variable frame rate (issue 14,
case 17), and a run killed with SIGKILL leaves a file that plays all but about its last
second (case 7): real encoded input, the real CLI, frames counted by decoding with PyAV."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline import Pipeline
from sources.scene import SyntheticScene
from sources.synthetic import write_clip

REPO = Path(__file__).resolve().parents[1]


def _times(path: Path) -> list[float]:
    """The presentation time (s) of every frame that decodes."""
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0)]


def _run(clip: Path, out: Path) -> None:
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(clip)}}], "model": {"intra_op_threads": 1},
           "sinks": [{"type": "video", "path": str(out)}]}
    Pipeline.from_config(cfg).run(handle_signals=False)


def test_a_10_fps_clip_keeps_its_duration(tmp_path):
    clip = tmp_path / "in.mp4"
    write_clip(clip, None, 30, seed=5, width=320, height=180, fps=10)  # 3 s
    _run(clip, tmp_path / "out.mp4")
    times = _times(tmp_path / "out.mp4")
    assert len(times) == 30
    assert np.allclose(np.diff(times), 0.1, atol=1e-3) and abs(times[-1] - times[0] - 2.9) < 1e-3
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert abs(float(c.duration / av.time_base) - 3.0) < 0.15  # what a player shows


def test_a_variable_frame_rate_clip_keeps_its_timestamps(tmp_path):
    clip, steps = tmp_path / "vfr.mp4", [40, 100, 60, 250, 33, 100, 500, 40] * 3  # ms between frames
    pts = np.concatenate([[0], np.cumsum(steps)])
    scene = SyntheticScene(4, 320, 180, 10.0)
    with av.open(str(clip), "w") as c:
        stream = c.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.options = {"bf": "0"}
        for t in pts.tolist():
            frame = av.VideoFrame.from_ndarray(scene.step()[0], format="bgr24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    source = np.array(_times(clip))
    assert np.allclose(source - source[0], pts / 1000, atol=1e-3)  # the input really is VFR
    _run(clip, tmp_path / "out.mp4")
    assert np.allclose(np.array(_times(tmp_path / "out.mp4")), pts / 1000, atol=2e-3)


def test_sigkill_loses_at_most_about_a_second_of_the_annotated_video(tmp_path):
    fps, gop, ring = 10, 10, 1  # the sink writes a keyframe (and a fragment) every second of video
    cfg = {"streams": [{"id": "cam0", "source": {"type": "synthetic", "seed": 2, "frames": None, "width": 320,
                                                   "height": 180, "fps": fps}}],
           "model": {"intra_op_threads": 1}, "rings": {"sink": ring},
           "sinks": [{"type": "jsonl", "path": "r.jsonl"}, {"type": "video", "path": "{stream}.mp4"}]}
    (tmp_path / "p.yaml").write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "p.yaml", "-q"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    jsonl, wanted = tmp_path / "r.jsonl", 45
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < wanted):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)  # polling a file another process writes
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    # The video sink is at most ring + 2 results behind this one: one in its ring, one in the
    # tracker's hands (already given to the JSONL sink), one being encoded.
    written = len(jsonl.read_text().splitlines())
    assert written >= wanted
    times = _times(tmp_path / "cam0.mp4")
    assert len(times) >= written - (ring + 2) - (fps + gop), (len(times), written)
    assert np.allclose(times, np.arange(len(times)) / fps, atol=1e-3)  # and at the source's timing
