"""The items that flow through the rings: packets, frames and end-of-stream events."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass
class Packet:
    """Compressed data from a source (``av.Packet``), or an already decoded image for
    sources that produce pixels (image folders, the synthetic world)."""

    stream_id: str
    index: int  # per stream, monotonic; for image and raw packets the frame's position in the source
    pts: float | None  # seconds
    captured_at: float  # wall clock (time.time()) when it arrived
    data: Any  # av.Packet, or np.ndarray (H, W, 3) uint8 BGR for raw sources
    keyframe: bool = True
    gap: bool = False  # first packet after a reconnect or a skipped stretch
    source_path: str | None = None  # the file it came from (image folders)
    is_control = False


@dataclass
class Frame:
    """A decoded frame: ``image`` is H×W×3 uint8 BGR. ``index`` is the frame's position in
    its source (a frame lost before it never shifts it; see :mod:`sources.positions`)."""

    stream_id: str
    index: int
    pts: float | None
    captured_at: float
    image: np.ndarray
    decoded_at: float = 0.0  # time.perf_counter() when decoding finished
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage so far
    gap: bool = False
    source_path: str | None = None  # the file it came from (image folders)
    is_control = False

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass
class EndOfStream:
    """The last item of a stream, in every ring it passes through. ``error`` is set when
    the stream ended because a stage failed on it."""

    stream_id: str
    reason: str = "eos"  # eos | stopped | error
    error: BaseException | None = None
    is_control = True


@dataclass
class StreamInfo:
    """Sent by a source before its first packet (and again after a reconnect): what the
    decoder needs to open its codec, and what later stages need to know of the stream."""

    stream_id: str
    codec: str | None  # FFmpeg codec name; None for raw or image packets
    width: int = 0
    height: int = 0
    fps: float | None = None
    time_base: Fraction | None = None
    extradata: bytes | None = None
    live: bool = False
    start_pts: float | None = None  # frames before this (after a seek) are decoded, not emitted
    # How the decoder numbers frames (sources.positions): "pts" (constant-rate files: the
    # position from the pts, first_pts being frame 0's), "order" (other files: presentation
    # order of the packets) or "count" (live: frames as they come).
    frame_positions: str = "count"
    first_pts: float = 0.0
    frames: int | None = None  # frames the input holds (files), to tell a truncated one
    is_control = True


@dataclass
class Discontinuity:
    """A live session ended (reconnect ahead): the decoder flushes what it holds now,
    rather than when the next session starts."""

    stream_id: str
    reason: str = "disconnected"
    is_control = True
