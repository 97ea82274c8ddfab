"""One RTSP/1.0 connection over TCP (RFC 2326): requests with their CSeq, responses with
their headers and body, and RTP/RTCP interleaved on the same socket (``$``, channel,
16-bit length, data: section 10.12), read by one thread in arrival order.

Every read waits at most the socket's timeout (the source's ``open_timeout`` while setting
up, its ``stall_timeout`` while streaming) and raises ``TimeoutError`` (an ``OSError``)
past it; a closed connection raises ``ConnectionError``; anything that is neither an RTSP
response nor an interleaved frame raises :class:`RtspProtocolError`. Errors never show
the URL's credentials: requests carry the URL without them.

Example:
    >>> Response.parse_head(b"RTSP/1.0 200 OK\\r\\nCSeq: 2\\r\\nSession: ab12;timeout=60\\r\\n").header("session")
    'ab12;timeout=60'
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field

from pipeline.core.errors import SourceError

log = logging.getLogger("vidpipe.source.rtsp")

USER_AGENT = "vidpipe"
MAX_HEADER_LINES = 100  # a reply longer than this is not RTSP
MAX_LINE = 8192
MAX_BODY = 1 << 20  # an SDP is a few hundred bytes; a megabyte is not a description


class RtspProtocolError(SourceError):
    """The server sent something that is not RTSP (or not what was asked for)."""


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)  # in order; names in lower case
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.headers if k == name), default)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    @classmethod
    def parse_head(cls, head: bytes) -> Response:
        lines = head.decode("utf-8", "replace").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("RTSP/") or not parts[1].isdigit():
            raise RtspProtocolError(f"not an RTSP reply: {lines[0][:80]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.append((name.strip().lower(), value.strip()))
        return cls(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


@dataclass(frozen=True)
class Interleaved:
    channel: int  # even: RTP, odd: RTCP (as SETUP's interleaved=0-1 asked)
    data: bytes


class RtspConnection:
    """A TCP connection to ``host:port``, opened within ``timeout`` seconds. ``where`` (the
    redacted URL) names the camera in errors."""

    def __init__(self, host: str, port: int, timeout: float, where: str) -> None:
        self.where = where
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._in = self._sock.makefile("rb", buffering=1 << 16)
        self._cseq = 0

    def set_timeout(self, seconds: float) -> None:
        self._sock.settimeout(seconds)

    def send(self, method: str, url: str, headers: dict[str, str] | None = None) -> int:
        """Send one request; its CSeq."""
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self._cseq

    def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> Response:
        """Send a request and read its response (interleaved data before it is dropped:
        there is none before PLAY)."""
        cseq = self.send(method, url, headers)
        while True:
            item = self.read()
            if isinstance(item, Response) and item.header("cseq") in (None, str(cseq)):
                return item

    def read(self) -> Response | Interleaved:
        """The next thing the server sent: a response or an interleaved frame."""
        first = self._exact(1)
        if first == b"$":
            head = self._exact(3)
            return Interleaved(head[0], self._exact(int.from_bytes(head[1:3], "big")))
        if first in (b"\r", b"\n"):  # stray line ends between messages
            return self.read()
        lines = [first + self._line()]
        while lines[-1] not in (b"\r\n", b"\n"):
            if len(lines) > MAX_HEADER_LINES:
                raise RtspProtocolError(f"{self.where}: a reply of more than {MAX_HEADER_LINES} header lines")
            lines.append(self._line())
        head = b"".join(lines).replace(b"\r\n", b"\n").strip(b"\n").replace(b"\n", b"\r\n")
        try:
            response = Response.parse_head(head)
        except RtspProtocolError as exc:
            raise RtspProtocolError(f"{self.where}: {exc}") from None
        length = response.header("content-length", "0") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            raise RtspProtocolError(f"{self.where}: Content-Length {length[:20]!r}")
        response.body = self._exact(int(length)) if int(length) else b""
        return response

    def _line(self) -> bytes:
        line = self._in.readline(MAX_LINE)
        if not line:
            raise ConnectionError(f"{self.where}: the server closed the connection")
        if not line.endswith(b"\n"):
            raise RtspProtocolError(f"{self.where}: a reply line of more than {MAX_LINE} bytes (not RTSP)")
        return line

    def _exact(self, n: int) -> bytes:
        data = self._in.read(n)
        if data is None or len(data) < n:
            raise ConnectionError(f"{self.where}: the server closed the connection")
        return data

    def close(self) -> None:
        try:
            self._in.close()
        finally:
            self._sock.close()
