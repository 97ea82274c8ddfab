"""vidpipe's RTSP client: one session with a camera over RTSP/TCP interleaved (RFC 2326),
its video's access units out the moment their last RTP packet arrives.

:meth:`RtspSession.describe` connects and reads the SDP (OPTIONS, DESCRIBE, answering a 401
with Basic or Digest credentials from the URL); the caller may then decline the stream (a
codec vidpipe does not depacketise) and use FFmpeg instead. :meth:`RtspSession.play` sets
the video up (SETUP with ``interleaved=0-1``, PLAY), and :meth:`RtspSession.access_units`
yields access units until the connection fails: ``TimeoutError`` after ``stall_timeout``
seconds without data (the stall watchdog), ``ConnectionError`` when the server closes it.
The session is kept alive from the same thread (GET_PARAMETER, or OPTIONS where the server
does not list it, every half of the Session header's timeout), and :meth:`close` sends
TEARDOWN. One thread uses a session; nothing here starts another.

Example:
    >>> session = RtspSession("rtsp://user:pw@127.0.0.1:8554/cam", open_timeout=5, stall_timeout=5)
    >>> session.where
    'rtsp://***@127.0.0.1:8554/cam'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from pipeline.core.errors import SourceError
from pipeline.core.redact import redact_url
from sources.rtsp.auth import Credentials
from sources.rtsp.connection import Interleaved, Response, RtspConnection, RtspProtocolError
from sources.rtsp.depacketizer import AccessUnit, Depacketizer
from sources.rtsp.rtp import RtpError, parse_rtp
from sources.rtsp.sdp import SdpError, VideoMedia, parse_sdp

log = logging.getLogger("vidpipe.source.rtsp")

DEFAULT_PORT = 554
DEFAULT_SESSION_TIMEOUT_S = 60.0  # RFC 2326 12.37, where the Session header names none
RTP_CHANNEL = 0


class RtspSession:
    def __init__(self, url: str, open_timeout: float, stall_timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "rtsp" or not parts.hostname:
            raise SourceError(f"not an rtsp:// URL: {redact_url(url)!r}")
        self.where = redact_url(url)
        self.host, self.port = parts.hostname, parts.port or DEFAULT_PORT
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        self.url = urlunsplit(("rtsp", f"{netloc}:{self.port}" if parts.port else netloc, parts.path, parts.query, ""))
        self._credentials = Credentials.from_userinfo(parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None)
        self.open_timeout, self.stall_timeout = open_timeout, stall_timeout
        self.media: VideoMedia | None = None
        self._conn: RtspConnection | None = None
        self._challenges: list[str] = []  # the last 401's, answered on every later request
        self._session_id: str | None = None
        self._keepalive_s = DEFAULT_SESSION_TIMEOUT_S / 2
        self._keepalive_method = "OPTIONS"
        self._base = self.url
        self.depacketizer: Depacketizer | None = None

    # -- setting up -------------------------------------------------------------------------
    def describe(self) -> VideoMedia:
        """Connect, ask for the description, and return its video media."""
        self._conn = RtspConnection(self.host, self.port, self.open_timeout, self.where)
        options = self._request("OPTIONS", self.url)
        public = (options.header("public") or "").upper()
        self._keepalive_method = "GET_PARAMETER" if "GET_PARAMETER" in public else "OPTIONS"
        reply = self._request("DESCRIBE", self.url, {"Accept": "application/sdp"})
        self._base = reply.header("content-base") or reply.header("content-location") or self.url
        try:
            self.media = parse_sdp(reply.body.decode("utf-8", "replace"), self._base)
        except SdpError as exc:
            raise RtspProtocolError(f"{self.where}: {exc}") from None
        return self.media

    def play(self) -> None:
        """SETUP the video over TCP interleaved and PLAY it."""
        media = self.media
        assert media is not None and media.codec is not None, "describe() first, and only for a codec vidpipe reads"
        self.depacketizer = Depacketizer(media.codec)
        reply = self._request("SETUP", media.control, {"Transport": f"RTP/AVP/TCP;unicast;interleaved={RTP_CHANNEL}-{RTP_CHANNEL + 1}"})
        session = reply.header("session")
        if not session:
            raise RtspProtocolError(f"{self.where}: SETUP's reply has no Session header")
        self._session_id, _, rest = session.partition(";")
        for param in rest.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "timeout" and value.strip().isdigit() and int(value) > 0:
                self._keepalive_s = int(value) / 2
        transport = (reply.header("transport") or "").lower()
        if "interleaved=" in transport and f"interleaved={RTP_CHANNEL}-" not in transport:
            raise RtspProtocolError(f"{self.where}: the server moved the stream to other channels ({transport!r})")
        self._request("PLAY", self._aggregate_url(), {"Range": "npt=0.000-"})

    def _aggregate_url(self) -> str:
        """The session's control URL: the SDP's session-level a=control, resolved."""
        base = self.media.aggregate if self.media is not None else self._base
        return base if base.startswith("rtsp://") else self.url

    def _request(self, method: str, url: str, headers: dict[str, str] | None = None) -> Response:
        """A request and its 2xx response; a 401 answered once with the URL's credentials."""
        assert self._conn is not None
        reply = self._conn.request(method, url, self._headers(method, url, headers))
        if reply.status == 401 and self._credentials is not None and reply.all("www-authenticate"):
            self._challenges = reply.all("www-authenticate")
            reply = self._conn.request(method, url, self._headers(method, url, headers))
        if reply.status == 401:
            why = "credentials refused" if self._credentials is not None else "it needs credentials (rtsp://user:pass@host/...)"
            raise SourceError(f"{self.where}: {method}: 401 Unauthorized: {why}")
        if not 200 <= reply.status < 300:
            raise SourceError(f"{self.where}: {method}: {reply.status} {reply.reason}")
        return reply

    def _headers(self, method: str, url: str, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._session_id is not None:
            headers["Session"] = self._session_id
        if self._credentials is not None and self._challenges:
            answer = self._credentials.answer(self._challenges, method, url)
            if answer is None:
                raise SourceError(f"{self.where}: the server asks for an authentication vidpipe does not speak: "
                                  f"{', '.join(c.split(' ', 1)[0] for c in self._challenges)}")
            headers["Authorization"] = answer
        return headers

    # -- streaming --------------------------------------------------------------------------
    def access_units(self, stopping: Callable[[], bool] = lambda: False) -> Iterator[AccessUnit]:
        """Access units until the connection fails (an ``OSError``), the server's reply to a
        keep-alive is an error (:class:`SourceError`), or ``stopping()`` (asked after every
        packet: a camera may send many before its first keyframe)."""
        assert self._conn is not None and self.depacketizer is not None and self.media is not None
        conn, depacketizer, payload_type = self._conn, self.depacketizer, self.media.payload_type
        conn.set_timeout(self.stall_timeout)
        next_keepalive = time.monotonic() + self._keepalive_s
        while not stopping():
            item = conn.read()
            if isinstance(item, Interleaved):
                if item.channel == RTP_CHANNEL:
                    try:
                        packet = parse_rtp(item.data)
                    except RtpError as exc:
                        log.debug("%s: RTP packet ignored: %s", self.where, exc)
                        continue
                    if packet.payload_type == payload_type:
                        yield from depacketizer.push(packet)
            elif item.status >= 400:
                self._keepalive_refused(item)
            if time.monotonic() >= next_keepalive:
                conn.send(self._keepalive_method, self._aggregate_url(),
                          self._headers(self._keepalive_method, self._aggregate_url(), None))
                next_keepalive = time.monotonic() + self._keepalive_s

    def _keepalive_refused(self, reply: Response) -> None:
        """A keep-alive's error reply: a nonce gone stale is answered afresh next time, a
        GET_PARAMETER the server does not take becomes OPTIONS; anything else ends the session."""
        if reply.status == 401 and self._credentials is not None and reply.all("www-authenticate"):
            self._challenges = reply.all("www-authenticate")
        elif reply.status in (405, 501, 551) and self._keepalive_method == "GET_PARAMETER":
            self._keepalive_method = "OPTIONS"
        else:
            raise SourceError(f"{self.where}: keep-alive {self._keepalive_method}: {reply.status} {reply.reason}")
        log.debug("%s: keep-alive %d %s: answered next time", self.where, reply.status, reply.reason)

    def close(self) -> None:
        """TEARDOWN (where a session was set up; not waited for) and close the connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._session_id is not None:
                conn.set_timeout(min(1.0, self.open_timeout))
                conn.send("TEARDOWN", self._aggregate_url(), self._headers("TEARDOWN", self._aggregate_url(), None))
        except OSError as exc:
            log.debug("%s: TEARDOWN not sent: %s", self.where, exc)
        finally:
            conn.close()
