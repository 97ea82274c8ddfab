"""Frame indices are positions in the source (issue 14, case 4): a corrupt packet in the
middle of a real H.264 clip with B-frames is one counted drop at its own index, and every
other frame keeps the index (and pts) it has in a clean run, with or without a seek."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline import Pipeline
from pipeline.core.errors import SourceError
from pipeline.core.items import StreamInfo
from sources.config import FileSourceConfig
from sources.file import VideoFileSource
from sources.positions import FramePositions

FPS, FRAMES = 30, 45


@pytest.fixture(scope="module")
def bframe_clip(tmp_path_factory) -> Path:
    """45 frames at 30 fps, 160×120, H.264 with two B-frames between references (decode
    order is not presentation order)."""
    out = tmp_path_factory.mktemp("positions") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={FPS}",
                    "-frames:v", str(FRAMES), "-c:v", "libx264", "-g", "15", "-bf", "2", "-pix_fmt", "yuv420p", str(out)],
                   check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    """24 frames, every third one shown twice as long (variable rate: positions cannot
    come from the pts), H.264 with B-frames."""
    out = tmp_path_factory.mktemp("positions") / "vfr.mp4"
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        stream.options = {"bf": "2", "g": "15"}
        t = 0
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), i * 10, np.uint8), format="bgr24")
            frame.pts, frame.time_base = t, Fraction(1, FPS)
            t += 2 if i % 3 == 0 else 1
            for pkt in stream.encode(frame):
                container.mux(pkt)
        for pkt in stream.encode(None):
            container.mux(pkt)
    return out


def corrupt_packet(src: Path, dst: Path, target: int) -> float:
    """Copy ``src`` with the bytes of its ``target``-th packet (decode order) replaced by
    garbage; returns that packet's pts (s)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        ostream = out.add_stream_from_template(stream)
        n, pts = 0, -1.0
        for pkt in inp.demux(stream):
            if pkt.dts is None:
                continue
            if n == target:
                assert not pkt.is_keyframe, "a frame in the middle of a GOP"
                bad = av.Packet(b"\xab" * pkt.size)
                bad.pts, bad.dts, bad.time_base = pkt.pts, pkt.dts, pkt.time_base
                pts = float(pkt.pts * pkt.time_base)
                pkt = bad
            pkt.stream = ostream
            out.mux(pkt)
            n += 1
    return pts


def index_at(results: dict[int, float], pts: float) -> int:
    return next(i for i, t in results.items() if t == pytest.approx(pts))


def run_file(model, path: Path, **options) -> tuple[dict[int, float], dict]:
    """frame index -> pts of every result of a run over ``path``, and the summary."""
    pipeline = Pipeline([VideoFileSource("s", FileSourceConfig(path=path, **options))], model)
    with pipeline:
        got = [(r.frame_index, r.pts) for r in pipeline]
    indices = [i for i, _ in got]
    assert indices == sorted(set(indices)), "indices strictly increase"
    return dict(got), pipeline.summary()


@pytest.fixture(scope="module")
def clean(model, bframe_clip) -> dict[int, float]:
    """The clean clip's results: index -> pts."""
    results, summary = run_file(model, bframe_clip)
    assert sorted(results) == list(range(FRAMES)) and summary["drops"] == {}
    return results


def test_a_corrupt_packet_is_a_drop_at_its_own_index(model, bframe_clip, clean, tmp_path):
    bad = tmp_path / "bad.mp4"
    position = index_at(clean, corrupt_packet(bframe_clip, bad, 20))
    got, summary = run_file(model, bad)
    missing = set(clean) - set(got)
    assert position in missing, f"frame {position} (the corrupt packet's) is the one lost"
    assert all(got[i] == pytest.approx(clean[i]) for i in got), "every decoded frame keeps its clean index"
    assert set(got) <= set(clean)
    assert summary["drops"].get("decode_error") == len(missing), summary["drops"]
    stream = summary["streams"]["s"]
    assert stream["frames"] + len(missing) == FRAMES and stream["truncated"] is False
    assert summary["errors"] == []


def test_seeking_keeps_absolute_indices(model, bframe_clip, clean, tmp_path):
    got, summary = run_file(model, bframe_clip, start_seconds=1.0)
    assert sorted(got) == list(range(FPS, FRAMES)), "from the frame at 1.0 s to the last"
    assert all(got[i] == pytest.approx(clean[i]) for i in got)
    assert summary["streams"]["s"]["frames_expected"] == FRAMES - FPS and summary["errors"] == []
    bad = tmp_path / "bad.mp4"
    position = index_at(clean, corrupt_packet(bframe_clip, bad, 37))
    assert position >= FPS
    got, summary = run_file(model, bad, start_seconds=1.0)
    assert position not in got and all(got[i] == pytest.approx(clean[i]) for i in got)
    assert summary["drops"].get("decode_error") == FRAMES - FPS - len(got)


@pytest.mark.parametrize("start", [1, 16, FRAMES - 1])
def test_start_frame_resumes_at_exactly_that_frame(model, bframe_clip, clean, start):
    """What a cluster worker does when a file moves to it: the first result is that frame,
    mid-GOP with B-frames too, and every later one follows (no gap, no repeat)."""
    got, summary = run_file(model, bframe_clip, start_frame=start)
    assert sorted(got) == list(range(start, FRAMES))
    assert all(got[i] == pytest.approx(clean[i]) for i in got)
    assert summary["errors"] == []


def test_start_frame_refused_past_the_end_and_on_a_variable_rate(bframe_clip, vfr_clip):
    with pytest.raises(SourceError, match=f"start_frame {FRAMES} is past the end"):
        VideoFileSource("s", FileSourceConfig(path=bframe_clip, start_frame=FRAMES)).open()
    with pytest.raises(SourceError, match="start_frame needs a constant frame rate"):
        VideoFileSource("s", FileSourceConfig(path=vfr_clip, start_frame=3)).open()
    with pytest.raises(ValueError, match="give one of them"):
        FileSourceConfig(path=bframe_clip, start_frame=3, start_seconds=1.0)


def test_variable_rate_positions_follow_presentation_order(model, vfr_clip, tmp_path):
    clean, _ = run_file(model, vfr_clip)
    assert sorted(clean) == list(range(24)), "positions, not pts × rate (which would skip)"
    bad = tmp_path / "bad.mp4"
    position = index_at(clean, corrupt_packet(vfr_clip, bad, 13))
    got, summary = run_file(model, bad)
    missing = set(clean) - set(got)
    assert position in missing and all(got[i] == pytest.approx(clean[i]) for i in got)
    assert summary["drops"].get("decode_error") == len(missing)
    assert summary["streams"]["s"]["truncated"] is False and summary["errors"] == []


def _info(mode: str, start: float | None = None) -> StreamInfo:
    return StreamInfo("s", "h264", fps=10.0, time_base=Fraction(1, 10), frame_positions=mode, start_pts=start)


@pytest.mark.parametrize("mode", ["pts", "order"])
def test_positions_of_frames_out_of_a_b_frame_decoder(mode):
    """Packets fed in decode order (0 3 1 2 6 4 5), packet 4 corrupt: its frame never
    comes; the others keep their positions, and the lost one is counted once."""
    p = FramePositions()
    p.reset(_info(mode))
    out = []
    for raw in (0, 3, 1, 2, 6, 4, 5):
        p.fed(raw, raw / 10)
    for raw in (0, 1, 2, 3, 5, 6):
        out.append(p.place(raw, raw / 10))
    assert p.finish() == 0
    assert out == [(0, 0), (1, 0), (2, 0), (3, 0), (5, 1), (6, 0)]
    assert (p.read, p.shortfall(7), p.shortfall(10)) == (7, None, (7, 10))


def test_positions_after_a_seek_and_across_loops():
    p = FramePositions()
    p.reset(_info("pts", start=0.3))
    for raw in range(6):
        p.fed(raw, raw / 10)
    assert [p.place(raw, raw / 10)[0] for raw in (0, 1, 2, 3, 4)] == [0, 1, 2, 3, 4]
    assert p.finish() == 1, "the last packet never decoded"
    assert (p.first, p.end, p.expected_in_range(6), p.shortfall(6)) == (3, 6, 3, None)
    p.reset(_info("pts", start=0.9))  # the next loop: pts offset so its frames follow on
    p.fed(6, 0.6)
    assert p.place(6, 0.6) == (6, 0), "a frame before the start: not counted, not numbered past"
    p.fed(9, 0.9)
    assert p.place(9, 0.9) == (9, 0) and p.last == 9
    live = FramePositions()
    live.reset(_info("count"))
    live.fed(5, 0.5)
    assert [live.place(5, 0.5), live.place(None, None)] == [(0, 0), (1, 0)] and live.finish() == 0
