"""Decoding: vidpipe's source + decoder stages against ``ffmpeg -f null`` on the same clip.

Two comparisons of the same work: decoding alone (``ffmpeg -f null`` vs PyAV decoding
with the decoder stage's threading, frames left in YUV) and decoding to the BGR arrays a
model consumes (``ffmpeg -pix_fmt bgr24 -f null`` vs the pipeline's source and decoder
threads, connected by their ring as in a pipeline). ffmpeg's time is its own ``-benchmark``
``rtime`` (process start-up excluded). Runs alternate; medians.

    python benchmarks/decode.py [--frames 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bench_clip, table  # noqa: E402
from pipeline.core.items import EndOfStream, Frame  # noqa: E402
from pipeline.core.ring import RingBuffer  # noqa: E402
from pipeline.core.stage import Bus  # noqa: E402
from pipeline.core.stats import StreamStats  # noqa: E402

NAME = "decode"
TITLE = "Decoding vs ffmpeg"


def ffmpeg_seconds(clip: Path, bgr: bool) -> float | None:
    """ffmpeg's own wall time (``-benchmark`` rtime) to decode the clip to nothing."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    cmd = [exe, "-hide_banner", "-nostdin", "-benchmark", "-i", str(clip), "-map", "0:v:0"]
    cmd += (["-pix_fmt", "bgr24"] if bgr else []) + ["-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    match = re.search(r"rtime=([\d.]+)s", proc.stderr)
    if match is None:
        raise RuntimeError(f"no rtime in ffmpeg's -benchmark output: {proc.stderr[-300:]}")
    return float(match.group(1))


def pyav_seconds(clip: Path) -> tuple[float, int]:
    """PyAV demux + decode with the decoder stage's threading, frames left as decoded."""
    t = time.perf_counter()
    n = 0
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        for _ in container.decode(stream):
            n += 1
    return time.perf_counter() - t, n


def vidpipe_seconds(clip: Path, hwaccel: str | None = None) -> tuple[float, int]:
    """The pipeline's own source and decoder threads, connected by a packet ring as in a
    pipeline; the frames ring is drained here. Returns (seconds, frames as BGR arrays)."""
    from pipeline.core.options import StreamOptions
    from sources.config import FileSourceConfig
    from sources.decoder import Decoder
    from sources.file import VideoFileSource
    from sources.stage import SourceStage

    bus, stats = Bus(), StreamStats("bench")
    packets: RingBuffer = RingBuffer(64, "block", "packets:bench")
    frames: RingBuffer = RingBuffer(4, "block", "frames:bench")
    file = VideoFileSource("bench", FileSourceConfig(path=clip))
    file.open()
    source = SourceStage(file, bus, packets, stats)
    decoder = Decoder("bench", bus, packets, frames, stats, StreamOptions(hwaccel=hwaccel))
    n = 0
    t = time.perf_counter()
    for stage in (decoder, source):
        stage.start()
    try:
        while True:
            item = frames.get(timeout=30)
            if isinstance(item, EndOfStream):
                break
            if isinstance(item, Frame):
                n += 1
    finally:
        for stage in (source, decoder):
            stage.stop()
        packets.close()
        frames.close()
        for stage in (source, decoder):
            stage.join(5)
    elapsed = time.perf_counter() - t
    if any(stage.alive for stage in (source, decoder)):
        raise RuntimeError("decoder benchmark: a stage did not stop")
    return elapsed, n


def measure(frames: int = 300, repeat: int = 3, size: tuple[int, int] = (1280, 720)) -> dict:
    clip = bench_clip(frames, size=size)
    with av.open(str(clip)) as c:
        n_frames = c.streams.video[0].frames or frames
    runs: dict[str, list[float]] = {"ffmpeg": [], "ffmpeg_bgr": [], "pyav": [], "vidpipe": []}
    for _ in range(repeat):
        for key, fn in (("ffmpeg", lambda: ffmpeg_seconds(clip, False)), ("pyav", lambda: pyav_seconds(clip)[0]),
                        ("ffmpeg_bgr", lambda: ffmpeg_seconds(clip, True)), ("vidpipe", lambda: vidpipe_seconds(clip)[0])):
            s = fn()
            if s is not None:
                runs[key].append(s)
    fps = {k: n_frames / statistics.median(v) for k, v in runs.items() if v}
    return {"clip": f"{n_frames} frames {size[0]}x{size[1]} H.264 (synthetic, crf 18, GOP 30)", "frames": n_frames,
            "repeat": repeat, "fps": fps, "runs_s": runs}


def render(data: dict) -> str:
    fps = data["fps"]
    rows = []
    for label, ours, theirs, ref in (("decode only (YUV frames)", "pyav", "ffmpeg", "ffmpeg -f null"),
                                     ("decode to BGR arrays", "vidpipe", "ffmpeg_bgr", "ffmpeg -pix_fmt bgr24 -f null")):
        if theirs in fps:
            rows.append([label, f"{fps[ours]:.1f}", f"{fps[theirs]:.1f} (`{ref}`)", f"**{fps[ours] / fps[theirs]:.2f}**"])
        else:
            rows.append([label, f"{fps[ours]:.1f}", "ffmpeg not installed (`make system-deps`)", "–"])
    names = {"decode only (YUV frames)": "PyAV, thread_type AUTO", "decode to BGR arrays": "vidpipe source + decoder stages"}
    for row in rows:
        row[0] = f"{row[0]}: {names[row[0]]}"
    text = [f"{data['clip']}; median of {data['repeat']} alternating runs.", "",
            table(["work", "vidpipe fps", "ffmpeg fps", "ratio"], rows)]
    if "ffmpeg_bgr" in fps:
        ratio = fps["vidpipe"] / fps["ffmpeg_bgr"]
        verdict = "met" if ratio >= 0.9 else "not met"
        text += ["", f"Target: decoding within 90 % of ffmpeg's throughput on the same work: {ratio:.2f}, {verdict}."]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    data = measure(args.frames, args.repeat)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
