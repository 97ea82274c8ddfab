"""ZeroMQ result publisher.

Messages are multipart: ``[topic = stream id, JSON header, optional JPEG of the frame]``.
The header is the ``vidpipe.result/1`` record plus ``seq`` (per publisher), ``stream_seq``
(per stream) and ``publisher`` (an id, so a subscriber of several publishers keeps their
sequences apart). When no result comes for ``heartbeat_s`` a heartbeat
``[b"vidpipe.heartbeat", {"schema": "vidpipe.heartbeat/1", ...}]`` goes out.

``pub`` (default): a slow subscriber loses messages at the high-water mark and never slows
the pipeline. ``push``: lossless, back-pressure into the pipeline. Optional CURVE
encryption and authentication (``vidpipe keys generate DIR`` makes the certificates).

Example:
    >>> sink = ZmqSink("tcp://127.0.0.1:5555", mode="pub", send_frames=True)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path

import cv2
import zmq
import zmq.auth
from pipeline.vision.result import Result

from pipeline.core.errors import VidpipeError
from pipeline.core.stage import StopStage
from pipeline.wire.records import to_record
from sinks.base import Sink

log = logging.getLogger("vidpipe.sink.zmq")

HEARTBEAT_TOPIC = b"vidpipe.heartbeat"


def generate_keys(directory: str | Path) -> dict[str, Path]:
    """Server and client CURVE certificates (``*.key`` public, ``*.key_secret`` secret)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("server", "client"):
        public, secret = zmq.auth.create_certificates(str(d), name)
        out[f"{name}_public"], out[f"{name}_secret"] = Path(public), Path(secret)
    return out


class ZmqSink(Sink):
    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", mode: str = "pub", bind: bool = True,
                 send_frames: bool = False, jpeg_quality: int = 80, format: str = "vidpipe", mask_format: str = "rle",
                 polygon_precision: float = 1.0, hwm: int = 1000, heartbeat_s: float = 1.0,
                 curve_server_secret: str | Path | None = None, curve_allowed_clients: str | Path | None = None,
                 name: str | None = None, sndbuf: int | None = None) -> None:
        if mode not in ("pub", "push"):
            raise ValueError(f"zmq sink mode must be pub or push, got {mode!r}")
        self.endpoint, self.mode, self.bind = endpoint, mode, bind
        self.send_frames, self.jpeg_quality = send_frames, jpeg_quality
        self.format, self.mask_format, self.polygon_precision = format, mask_format, polygon_precision
        self.hwm, self.heartbeat_s = hwm, heartbeat_s
        self.sndbuf = sndbuf  # kernel send buffer (bytes): small = drops sooner, less latency
        self.curve_server_secret = Path(curve_server_secret) if curve_server_secret else None
        self.curve_allowed_clients = Path(curve_allowed_clients) if curve_allowed_clients else None
        self.name = name or f"zmq:{endpoint}"
        self.lossless = mode == "push"
        self.publisher = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.seq = 0
        self.stream_seq: dict[str, int] = {}
        self.sent = 0
        self.bytes_sent = 0
        self.stop_event = threading.Event()  # set by the owning stage to abandon a blocked PUSH send
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._auth = None
        self._last_send = time.monotonic()

    def open(self) -> None:
        self._ctx = zmq.Context()
        sock = self._ctx.socket(zmq.PUB if self.mode == "pub" else zmq.PUSH)
        sock.setsockopt(zmq.SNDHWM, self.hwm)
        if self.sndbuf:
            sock.setsockopt(zmq.SNDBUF, self.sndbuf)
        sock.setsockopt(zmq.LINGER, 2000 if self.lossless else 200)
        if self.curve_server_secret is not None:
            self._setup_curve(sock)
        try:
            sock.bind(self.endpoint) if self.bind else sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            self._stop_auth()
            self._ctx.term()
            raise VidpipeError(f"zmq sink cannot {'bind' if self.bind else 'connect'} {self.endpoint}: {exc}") from exc
        self._sock = sock
        self._last_send = time.monotonic()

    def _setup_curve(self, sock: zmq.Socket) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        if not self.curve_server_secret.is_file():
            raise VidpipeError(f"CURVE server secret key not found: {self.curve_server_secret}")
        if self.curve_allowed_clients is None or not self.curve_allowed_clients.is_dir():
            raise VidpipeError(f"CURVE needs a folder of allowed client public keys, got {self.curve_allowed_clients}")
        public, secret = zmq.auth.load_certificate(str(self.curve_server_secret))
        if secret is None:
            raise VidpipeError(f"{self.curve_server_secret} holds no secret key")
        self._auth = ThreadAuthenticator(self._ctx)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(self.curve_allowed_clients))
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    def _send(self, parts: list[bytes]) -> None:
        assert self._sock is not None
        if not self.lossless:
            self._sock.send_multipart(parts)  # PUB never blocks: at the high-water mark it drops
        else:
            # PUSH blocks at the high-water mark (back-pressure); wait in steps to notice a stop.
            while True:
                try:
                    self._sock.send_multipart(parts, flags=zmq.NOBLOCK)
                    break
                except zmq.Again:
                    if self.stop_event.is_set():
                        raise StopStage() from None
                    self._sock.poll(50, zmq.POLLOUT)
        self.sent += 1
        self.bytes_sent += sum(len(p) for p in parts)
        self._last_send = time.monotonic()

    def write(self, result: Result) -> None:
        self.seq += 1
        stream_seq = self.stream_seq.get(result.stream_id, 0) + 1
        self.stream_seq[result.stream_id] = stream_seq
        header = to_record(result, self.mask_format, self.polygon_precision, self.seq, self.format)
        header["stream_seq"] = stream_seq
        header["publisher"] = self.publisher
        parts = [result.stream_id.encode(), json.dumps(header, separators=(",", ":")).encode()]
        if self.send_frames and result.image is not None:
            ok, jpeg = cv2.imencode(".jpg", result.image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                parts.append(jpeg.tobytes())
        self._send(parts)

    def idle(self) -> None:
        if self._sock is not None and self.heartbeat_s > 0 and time.monotonic() - self._last_send >= self.heartbeat_s:
            self.seq += 1
            beat = {"schema": "vidpipe.heartbeat/1", "seq": self.seq, "publisher": self.publisher, "time": time.time(),
                    "stream_seq": dict(self.stream_seq)}
            self._send([HEARTBEAT_TOPIC, json.dumps(beat).encode()])

    def _stop_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._stop_auth()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
