"""Live sources through PyAV: RTSP cameras, HTTP(S)/HLS URLs and V4L2 webcams.

A live source never gives up by default: it connects, streams, and on any failure
(refused, timed out, stream ended, no packet for ``stall_timeout`` seconds: the stall
watchdog is PyAV's read timeout) it reconnects with exponential backoff and jitter. A
camera that is offline at start just keeps retrying in its own thread, so the pipeline
and the other streams run meanwhile; it joins when it comes up. States (connecting,
streaming, reconnecting, ended, failed) go to the logs, the stream counters, the summary.

Frame indices stay monotonic across reconnects and the first packet after one carries a
gap marker (``gap: true`` in results). Credentials in the URL are redacted everywhere.

An ``rtsp://`` camera over TCP is read by vidpipe's own RTSP client (sources/rtsp) where it
offers H.264 or H.265 (``client: auto``): each access unit goes out when its last RTP packet
arrives, a frame interval sooner than FFmpeg's demuxer hands it over. Other cameras (UDP,
``rtsps://``, other codecs, replies it cannot parse) and ``client: ffmpeg`` go through FFmpeg; both yield the same
StreamInfo, packets, gaps and Discontinuity, and fail, stall and reconnect alike.

Example:
    >>> src = LiveVideoSource("door", RtspSourceConfig(url="rtsp://user:pw@127.0.0.1:8554/cam"))
    >>> src.describe()
    'rtsp rtsp://***@127.0.0.1:8554/cam'
"""

from __future__ import annotations

import logging
import random
from collections.abc import Generator, Iterator
from fractions import Fraction
from typing import Any

import av

from pipeline.core.errors import SourceError
from pipeline.core.items import Discontinuity, StreamInfo
from pipeline.core.redact import redact_text, redact_url, register_secrets
from sources.base import Source, SourceItem
from sources.config import RtspSourceConfig, UrlSourceConfig, WebcamSourceConfig
from sources.file import stream_info
from sources.rtsp.connection import RtspProtocolError
from sources.rtsp.depacketizer import AccessUnit
from sources.rtsp.sdp import VideoMedia
from sources.rtsp.session import RtspSession

log = logging.getLogger("vidpipe.source.live")

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
RTSP_ANALYZE_US = 500_000  # how long FFmpeg probes an RTSP input before it streams (microseconds)
LiveSourceConfig = RtspSourceConfig | UrlSourceConfig | WebcamSourceConfig
# An access unit delimiter after an access unit makes FFmpeg's parser return it (and its size).
DELIMITER = {"h264": b"\x00\x00\x00\x01\x09\xf0", "hevc": b"\x00\x00\x00\x01\x46\x01\x50"}


class UnsupportedStream(SourceError):
    """``client: vidpipe`` for a camera it cannot read: retrying would not help."""


class LiveVideoSource(Source):
    live = True
    reports_state = True

    def __init__(self, stream_id: str, config: LiveSourceConfig) -> None:
        super().__init__(stream_id)
        self.config = config
        self.kind = config.type
        self.url = config.device if isinstance(config, WebcamSourceConfig) else config.url
        register_secrets([self.url])  # scrubbed from every later log line and error, in any form
        self.attempts = 0  # failed attempts in a row; a working session resets it
        self.client = "ffmpeg"  # who reads the current session: "vidpipe" (sources/rtsp) or "ffmpeg"
        self._ffmpeg_fallback = False  # auto: this camera offered what vidpipe's client does not read
        self._rng = random.Random()

    def describe(self) -> str:
        return f"{self.kind} {redact_url(self.url)}"

    def open(self) -> None:
        # Only the form is checked: a camera may be offline now and come up later.
        if self.kind == "webcam":
            if not self.url:
                raise SourceError(f"stream {self.stream_id!r}: webcam needs a device, e.g. /dev/video0")
        elif not self.url.startswith(LIVE_SCHEMES):
            raise SourceError(f"stream {self.stream_id!r}: not a stream URL: {redact_url(self.url)!r} "
                              f"(expected one of {', '.join(LIVE_SCHEMES)})")
        super().open()

    def _options(self) -> dict[str, str]:
        """FFmpeg options of the input: the config's own, then what its type implies."""
        c = self.config
        options = dict(c.options)
        if isinstance(c, RtspSourceConfig):
            options.setdefault("rtsp_transport", c.rtsp_transport)
            # FFmpeg probes a live input for 5 s by default (frame rate from many frames):
            # 2.8 s before a 10 fps camera's first packet. Half a second finds codec, size
            # and rate (the SDP carries the parameter sets): 0.6 s. Overridable in `options`.
            options.setdefault("analyzeduration", str(RTSP_ANALYZE_US))
        elif isinstance(c, WebcamSourceConfig):
            if c.video_size:
                options.setdefault("video_size", c.video_size)
            if c.framerate:
                options.setdefault("framerate", str(c.framerate))
        return options

    def _vidpipe_client(self) -> bool:
        c = self.config
        return (isinstance(c, RtspSourceConfig) and c.client != "ffmpeg" and not self._ffmpeg_fallback
                and c.rtsp_transport == "tcp" and self.url.startswith("rtsp://"))

    def _connect_rtsp(self) -> RtspSession | None:
        """A playing session of vidpipe's client, or None where the camera offers what it does
        not read (``auto``: FFmpeg reads this camera from now on)."""
        c = self.config
        session = RtspSession(self.url, c.open_timeout, c.stall_timeout)
        try:
            media = session.describe()
            if media.codec is not None and media.profile == "RTP/AVP" and media.packetization_mode < 2:
                session.play()
                return session
        except BaseException:
            session.close()
            raise
        session.close()
        what = f"{media.encoding} over {media.profile}" + (f", packetization-mode {media.packetization_mode}" if media.codec else "")
        if isinstance(c, RtspSourceConfig) and c.client == "vidpipe":
            raise UnsupportedStream(f"stream {self.stream_id!r}: {session.where} offers {what}; vidpipe's RTSP client "
                                    "reads H.264 and H.265 over RTP/AVP (packetization-mode 0 or 1): use client: ffmpeg")
        log.info("stream %s: %s offers %s: read through FFmpeg", self.stream_id, session.where, what)
        self._ffmpeg_fallback = True
        return None

    def _connect(self) -> Any:
        if self._vidpipe_client():
            try:
                session = self._connect_rtsp()
            except RtspProtocolError as exc:  # not a network or credentials problem: a dialect FFmpeg may speak
                if not isinstance(self.config, RtspSourceConfig) or self.config.client != "auto":
                    raise
                log.warning("stream %s: vidpipe's RTSP client cannot read it (%s): read through FFmpeg",
                            self.stream_id, redact_text(str(exc), self.url))
                self._ffmpeg_fallback, session = True, None
            if session is not None:
                self.client = "vidpipe"
                return session
        self.client = "ffmpeg"
        input_format = self.config.input_format if isinstance(self.config, WebcamSourceConfig) else None
        container = av.open(self.url, options=self._options(), format=input_format,
                            timeout=(self.config.open_timeout, self.config.stall_timeout))
        if not container.streams.video:
            container.close()
            raise SourceError(f"no video stream at {redact_url(self.url)}")
        return container

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt`` (1-based): exponential, capped, with jitter."""
        c = self.config
        base = min(c.backoff_max, c.backoff_initial * 2 ** max(0, attempt - 1))
        return base * (1 + self._rng.uniform(-c.backoff_jitter, c.backoff_jitter))

    def _failed_attempt(self, why: str) -> bool:
        """Count a failed attempt (no connection, or a session that sent nothing): raise once
        ``max_attempts`` is reached, else wait the backoff. False when stopped meanwhile."""
        self.attempts += 1
        if self.config.max_attempts is not None and self.attempts >= self.config.max_attempts:
            self._set_state("failed")
            # from None: the FFmpeg error being handled names the URL with its credentials
            raise SourceError(f"stream {self.stream_id!r}: {self.describe()} unreachable after "
                              f"{self.attempts} attempts: {why}") from None
        delay = self.backoff(self.attempts)
        log.warning("stream %s: %s (attempt %d): %s; retrying in %.1f s",
                    self.stream_id, self.describe(), self.attempts, why, delay)
        return not self._stop.wait(delay)

    def _set_state(self, state: str) -> None:
        if self.stats.state != state:
            log.info("stream %s: %s (%s)", self.stream_id, state, self.describe())
        self.stats.set_state(state)

    def packets(self) -> Iterator[SourceItem]:
        sessions = 0
        while not self.stopping:
            self._set_state("reconnecting" if sessions else "connecting")
            try:
                container = self._connect()
            except UnsupportedStream:
                self._set_state("failed")
                raise
            except (av.error.FFmpegError, OSError, SourceError) as exc:
                if not self._failed_attempt(f"cannot open: {redact_text(str(exc), self.url)}"):
                    return
                continue
            if sessions:
                self.stats.reconnects += 1
            sessions += 1
            reader = self._rtp_session if isinstance(container, RtspSession) else self._session
            received = yield from reader(container, gap=sessions > 1)
            yield Discontinuity(self.stream_id)
            # Opened but sent nothing: back off as after a failed open, or this spins.
            if received == 0 and not self.stopping and not self._failed_attempt("connected, but no packets came"):
                return
        self._set_state("ended")

    def _session(self, container: Any, gap: bool) -> Generator[SourceItem, None, int]:
        """One connection: its StreamInfo, then packets until it ends or fails. Returns the
        number of packets received."""
        video = container.streams.video[0]
        self._set_state("streaming")
        yield stream_info(self.stream_id, video, live=True)
        tb = video.time_base
        received = 0
        try:
            for pkt in container.demux(video):
                if self.stopping:
                    return received
                if pkt.size == 0:
                    continue
                if received == 0:
                    self.attempts = 0  # a working session resets the backoff
                received += 1
                pts = float(pkt.pts * tb) if pkt.pts is not None and tb is not None else None
                yield self.make_packet(pkt, pts, keyframe=pkt.is_keyframe, gap=gap and received == 1)
            log.warning("stream %s: the stream ended; reconnecting", self.stream_id)
        except (av.error.FFmpegError, OSError) as exc:
            # PyAV's read timeout is the stall watchdog: no packet for stall_timeout seconds.
            log.warning("stream %s: %s; reconnecting", self.stream_id, redact_text(str(exc), self.url))
        finally:
            container.close()
        return received

    def _rtp_session(self, session: RtspSession, gap: bool) -> Generator[SourceItem, None, int]:
        """One session of vidpipe's RTSP client: a StreamInfo with the first access unit (its
        size read from it), then an ``av.Packet`` per access unit, pts from the RTP clock."""
        media = session.media
        assert media is not None and session.depacketizer is not None
        self._set_state("streaming")
        depacketizer, tb = session.depacketizer, Fraction(1, media.clock_rate)
        received, lost, first = 0, 0, 0
        try:
            for au in session.access_units(lambda: self.stopping):
                if self.stopping:
                    return received
                if received == 0:
                    self.attempts = 0  # a working session resets the backoff
                    first = au.timestamp
                    yield self._rtp_stream_info(media, au)
                received += 1
                skipped = depacketizer.lost - lost  # units dropped after lost packets: the next one is a gap
                lost = depacketizer.lost
                if skipped:
                    self.stats.drop("packet_loss", skipped)
                packet = av.Packet(au.data)
                packet.pts = packet.dts = au.timestamp - first
                packet.time_base = tb
                yield self.make_packet(packet, float(packet.pts * tb), keyframe=au.keyframe,
                                       gap=(gap and received == 1) or skipped > 0)
        except (OSError, SourceError) as exc:  # a read timeout is the stall watchdog
            log.warning("stream %s: %s; reconnecting", self.stream_id, redact_text(str(exc), self.url))
        finally:
            session.close()
        return received

    def _rtp_stream_info(self, media: VideoMedia, au: AccessUnit) -> StreamInfo:
        """What FFmpeg would say of the stream: its size parsed from the first access unit."""
        assert media.codec is not None
        parser: Any = av.CodecContext.create(media.codec, "r")  # a VideoCodecContext (width, height)
        try:
            parser.parse(au.data + DELIMITER[media.codec])
        except av.error.FFmpegError as exc:
            log.warning("stream %s: the first access unit does not parse (%s): size unknown", self.stream_id, exc)
        info = StreamInfo(self.stream_id, media.codec, int(parser.width or 0), int(parser.height or 0), media.fps,
                          Fraction(1, media.clock_rate), media.extradata, live=True)
        log.info("stream %s: read by vidpipe's RTSP client: %s %dx%d", self.stream_id, media.encoding, info.width, info.height)
        return info
