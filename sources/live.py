"""Live sources through PyAV: RTSP cameras, HTTP(S)/HLS URLs and V4L2 webcams.

A live source never gives up by default: it connects, streams, and on any failure
(refused, timed out, stream ended, no packet for ``stall_timeout`` seconds: the stall
watchdog is PyAV's read timeout) it reconnects with exponential backoff and jitter. A
camera that is offline at start just keeps retrying in its own thread, so the pipeline
and the other streams run meanwhile; it joins when it comes up. States (connecting,
streaming, reconnecting, ended, failed) go to the logs, the stream counters, the summary.

Frame indices stay monotonic across reconnects and the first packet after one carries a
gap marker (``gap: true`` in results). Credentials in the URL are redacted everywhere.

Example:
    >>> src = LiveVideoSource("door", "rtsp://user:pw@127.0.0.1:8554/cam")
    >>> src.describe()
    'rtsp rtsp://***@127.0.0.1:8554/cam'
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import av

from pipeline.core.errors import SourceError
from pipeline.core.items import Discontinuity, Packet, StreamInfo
from pipeline.core.redact import redact_text, redact_url
from sources.base import Source
from sources.file import stream_info

log = logging.getLogger("vidpipe.source.live")

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


class LiveVideoSource(Source):
    live = True
    manages_state = True

    def __init__(self, stream_id: str, url: str, transport: str = "tcp", open_timeout: float = 5.0,
                 stall_timeout: float = 5.0, backoff_initial: float = 0.5, backoff_max: float = 10.0,
                 backoff_jitter: float = 0.25, max_attempts: int | None = None, input_format: str | None = None,
                 options: dict[str, str] | None = None, kind: str = "rtsp") -> None:
        super().__init__(stream_id)
        self.url = url
        self.kind = kind
        self.transport = transport
        self.open_timeout, self.stall_timeout = open_timeout, stall_timeout
        self.backoff_initial, self.backoff_max, self.backoff_jitter = backoff_initial, backoff_max, backoff_jitter
        self.max_attempts = max_attempts  # None: retry forever
        self.input_format = input_format
        self.options = dict(options or {})
        self.attempts = 0
        self._rng = random.Random()

    def describe(self) -> str:
        return f"{self.kind} {redact_url(self.url)}"

    def probe(self) -> None:
        # Only the form is checked: a camera may be offline now and come up later.
        if self.kind == "webcam":
            if not self.url:
                raise SourceError(f"stream {self.stream_id!r}: webcam needs a device, e.g. /dev/video0")
        elif not self.url.startswith(LIVE_SCHEMES):
            raise SourceError(f"stream {self.stream_id!r}: not a stream URL: {redact_url(self.url)!r} "
                              f"(expected one of {', '.join(LIVE_SCHEMES)})")
        if self.transport not in ("tcp", "udp"):
            raise SourceError(f"stream {self.stream_id!r}: rtsp_transport must be tcp or udp, got {self.transport!r}")
        super().probe()

    def _open(self):
        options = dict(self.options)
        if self.kind == "rtsp":
            options.setdefault("rtsp_transport", self.transport)
        container = av.open(self.url, options=options, format=self.input_format,
                            timeout=(self.open_timeout, self.stall_timeout))
        if not container.streams.video:
            container.close()
            raise SourceError(f"no video stream at {redact_url(self.url)}")
        return container

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt`` (1-based): exponential, capped, with jitter."""
        base = min(self.backoff_max, self.backoff_initial * 2 ** max(0, attempt - 1))
        return base * (1 + self._rng.uniform(-self.backoff_jitter, self.backoff_jitter))

    def _set_state(self, state: str) -> None:
        if self.stream_stats.state != state:
            log.info("stream %s: %s (%s)", self.stream_id, state, self.describe())
        self.stream_stats.set_state(state)

    def packets(self) -> Iterator[Packet | StreamInfo | Discontinuity]:
        connected_before = False
        while not self.stopping:
            self._set_state("reconnecting" if connected_before else "connecting")
            try:
                container = self._open()
            except (av.error.FFmpegError, OSError, SourceError) as exc:
                self.attempts += 1
                why = redact_text(str(exc), self.url)
                if self.max_attempts is not None and self.attempts >= self.max_attempts:
                    self._set_state("failed")
                    raise SourceError(f"stream {self.stream_id!r}: {self.describe()} unreachable after "
                                      f"{self.attempts} attempts: {why}") from None
                delay = self.backoff(self.attempts)
                log.warning("stream %s: cannot open %s (attempt %d): %s; retrying in %.1f s",
                            self.stream_id, self.describe(), self.attempts, why, delay)
                if self._stop.wait(delay):
                    return
                continue
            video = container.streams.video[0]
            gap = connected_before
            if connected_before:
                self.stream_stats.reconnects += 1
            connected_before = True
            self._set_state("streaming")
            yield stream_info(self.stream_id, video, live=True)
            tb = video.time_base
            received = 0
            try:
                for pkt in container.demux(video):
                    if self.stopping:
                        return
                    if pkt.size == 0:
                        continue
                    if received == 0:
                        self.attempts = 0  # a working session resets the backoff
                    received += 1
                    pts = float(pkt.pts * tb) if pkt.pts is not None and tb is not None else None
                    yield self.make_packet(pkt, pts, keyframe=pkt.is_keyframe, gap=gap)
                    gap = False
                log.warning("stream %s: the stream ended; reconnecting", self.stream_id)
            except (av.error.FFmpegError, OSError) as exc:
                # PyAV's read timeout is the stall watchdog: no packet for stall_timeout seconds.
                log.warning("stream %s: %s; reconnecting", self.stream_id, redact_text(str(exc), self.url))
            finally:
                container.close()
            yield Discontinuity(self.stream_id)
            if received == 0:
                # Opened but sent nothing: back off as after a failed open, or this spins.
                self.attempts += 1
                if self.max_attempts is not None and self.attempts >= self.max_attempts:
                    self._set_state("failed")
                    raise SourceError(f"stream {self.stream_id!r}: {self.describe()} sent no packets in "
                                      f"{self.attempts} sessions")
                if self._stop.wait(self.backoff(self.attempts)):
                    return
        self._set_state("ended")
