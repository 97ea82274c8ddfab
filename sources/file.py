"""Video file source: demuxes one video stream of a container with PyAV.

Example:
    >>> source = VideoFileSource("cam0", FileSourceConfig(path="clip.mp4"))   # doctest: +SKIP
    >>> source.open(); source.info.width                                     # doctest: +SKIP
    1280
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av

from pipeline.core.errors import SourceError
from pipeline.core.items import Discontinuity, Packet, StreamInfo
from sources.base import Source
from sources.config import FileSourceConfig

log = logging.getLogger("vidpipe.source.file")


def open_video(path: str | Path, options: dict[str, str] | None = None):
    """Open a container and its first video stream, or raise SourceError naming why."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"video file not found: {p}")
    if p.is_dir():
        raise SourceError(f"expected a video file, got a directory: {p} (use type: images)")
    try:
        container = av.open(str(p), options=options or {})
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot read video {p}: {exc} (not a video, or truncated?)") from exc
    if not container.streams.video:
        container.close()
        raise SourceError(f"no video stream in {p}")
    return container, container.streams.video[0]


def stream_info(stream_id: str, stream, live: bool = False) -> StreamInfo:
    ctx = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate
    return StreamInfo(
        stream_id=stream_id,
        codec=ctx.name,
        width=int(ctx.width or 0),
        height=int(ctx.height or 0),
        fps=float(rate) if rate else None,
        time_base=stream.time_base,
        extradata=bytes(ctx.extradata) if ctx.extradata else None,
        live=live,
    )


def _constant_rate(stream) -> bool:
    """Whether the container says the stream has a constant frame rate (its average rate
    is its base rate), so a frame's position follows from its pts."""
    avg, base = stream.average_rate, stream.base_rate
    return bool(avg and base) and abs(float(avg) - float(base)) <= 1e-3 * float(base)


def _duration_s(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration and container.duration > 0 else None


def _positions(stream, container, info: StreamInfo) -> StreamInfo:
    """``info`` with how frames are numbered (positions from the pts where the rate is
    constant) and the frames the file holds (its count, else duration × rate)."""
    first = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else None
    cfr = _constant_rate(stream) and first is not None and bool(info.fps)
    frames: int | None = int(stream.frames) if stream.frames else None
    duration = _duration_s(container, stream)
    if frames is None and duration and info.fps:
        frames = round(duration * info.fps)
    return replace(info, frame_positions="pts" if cfr else "order", first_pts=first or 0.0, frames=frames)


class VideoFileSource(Source):
    """Reads packets of a video file: as fast as the pipeline takes them, or with
    ``realtime`` at the file's own frame rate (a stand-in for a camera: live rings and
    GOP skipping apply). ``loop`` starts over at the end with pts and indices still
    increasing; ``start_seconds`` seeks first (frames before it are decoded, not emitted); so
    does ``start_frame``, from half a frame before that frame's pts (a constant-rate file's
    indices are positions in time: the first frame emitted has exactly that index)."""

    def __init__(self, stream_id: str, config: FileSourceConfig) -> None:
        super().__init__(stream_id)
        self.config = config
        self.path = Path(config.path)
        self.live = config.realtime
        self._container = None
        self._stream = None
        self.info: StreamInfo | None = None
        self.start_s = config.start_seconds  # where reading starts (start_frame: known once open)

    def describe(self) -> str:
        return f"file {self.path}"

    def expected_frames(self) -> int | None:
        if self.config.loop or self.info is None:
            return None
        return self.info.frames

    def open(self) -> None:
        if self._container is None:
            container, stream = open_video(self.path)
            self._container, self._stream = container, stream
            self.info = _positions(stream, container, stream_info(self.stream_id, stream))
            if self.config.loop:
                self.info = replace(self.info, frames=None)  # no end to fall short of
            if stream.frames == 0 and (container.duration or 0) <= 0 and not self.info.width:
                raise SourceError(f"video {self.path} holds no frames")
            self._start_at_frame()
            self._check_start(container, stream)
        super().open()

    def _start_at_frame(self) -> None:
        """``start_frame`` as a start in seconds: half a frame before its pts, so that
        frame is the first emitted whatever the rounding of the container's timestamps."""
        frame = self.config.start_frame
        if not frame or self.info is None:
            return
        if self.info.frame_positions != "pts" or not self.info.fps:
            self.close()
            raise SourceError(f"stream {self.stream_id}: start_frame needs a constant frame rate, and {self.path} "
                              "has a variable one (its frame indices are not positions in time)")
        self.start_s = self.info.first_pts + (frame - 0.5) / self.info.fps

    def _check_start(self, container, stream) -> None:
        """A start past the last frame would read nothing: say so now."""
        start, duration = self.start_s, _duration_s(container, stream)
        if not start or duration is None or self.info is None:
            return
        last = self.info.first_pts + duration - (1 / self.info.fps if self.info.fps else 0.0)
        if start > last + 1e-3:  # no frame at or after the start
            self.close()
            what = f"start_frame {self.config.start_frame}" if self.config.start_frame else f"start_seconds {start:g}"
            raise SourceError(f"stream {self.stream_id}: {what} is past the end of {self.path} "
                              f"({duration:.2f} s long, last frame at {last:.2f} s)")

    def packets(self) -> Iterator[Packet | StreamInfo | Discontinuity]:
        assert self._container is not None and self.info is not None
        tb = self._stream.time_base
        info = replace(self.info, start_pts=self.start_s or None)
        offset = 0.0  # added to pts on every loop, so they keep increasing
        clock_start: float | None = None
        while True:
            if self.start_s:
                self._container.seek(int(self.start_s / tb), stream=self._stream, backward=True)
            yield info
            last_pts = 0.0
            try:
                for pkt in self._container.demux(self._stream):
                    if pkt.size == 0:  # the demuxer's flush packet
                        continue
                    pts = float(pkt.pts * tb) + offset if pkt.pts is not None else None
                    if self.config.realtime and pts is not None:
                        if clock_start is None:
                            clock_start = time.monotonic() - pts
                        delay = clock_start + pts - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
                            return
                    last_pts = max(last_pts, pts or 0.0)
                    yield self.make_packet(pkt, pts, keyframe=pkt.is_keyframe)
            except av.error.FFmpegError as exc:
                raise SourceError(f"reading {self.path} failed after {self._index} packets: {exc} (truncated?)") from exc
            if not self.config.loop or self.stopping:
                return
            frame_s = 1 / self.info.fps if self.info.fps else 0.0
            # The next loop's first frame follows this one's last (its positions too).
            offset = last_pts + frame_s - (self.start_s or self.info.first_pts)
            # A new StreamInfo object: the decoder may still hold the previous one.
            info = replace(self.info, start_pts=(self.start_s + offset) if self.start_s else None)
            yield Discontinuity(self.stream_id, "loop")
            self._container.seek(0, stream=self._stream)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
