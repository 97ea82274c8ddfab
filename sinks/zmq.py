"""ZeroMQ result publisher.

Messages are multipart: ``[topic = stream id, JSON header, optional JPEG of the frame]``.
The header is the ``vidpipe.result/1`` record plus ``seq`` (per publisher), ``stream_seq``
(per stream) and ``publisher`` (an id, so a subscriber of several publishers keeps their
sequences apart). When no result comes for ``heartbeat_s`` a heartbeat
``[HEARTBEAT_TOPIC, {"schema": "vidpipe.heartbeat/1", ...}]`` goes out (both from
:mod:`pipeline.wire.records`).

``pub`` (default): a slow subscriber loses messages at the high-water mark and never slows
the pipeline. ``push``: lossless while a consumer takes the results, back-pressure into the
pipeline; but a result no consumer takes within ``send_timeout_s`` (none connected, or one
stuck) is dropped, counted (``dropped`` in the sink's stats, a line in the run's problems)
and logged once, and so is each next result, at once, until a consumer takes one again:
a PUSH sink without a consumer never stalls the other sinks or a stop. Optional CURVE
encryption and authentication (``vidpipe keys generate DIR`` makes the certificates).

Example:
    >>> sink = ZmqSink(ZmqSinkConfig(endpoint="tcp://127.0.0.1:5555", mode="push", send_frames=True))
    >>> sink.name, sink.lossless   # nothing is bound until open()
    ('zmq:tcp://127.0.0.1:5555', True)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import zmq
import zmq.auth

from pipeline.core.errors import VidpipeError
from pipeline.core.stage import StopStage
from pipeline.vision.result import Result
from pipeline.wire.records import HEARTBEAT_TOPIC, heartbeat_record, to_record
from sinks.base import Sink, check_config
from sinks.config import CurveServerConfig, ZmqSinkConfig
from sinks.curve import check_allowed_clients, load_key

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("vidpipe.sink.zmq")


def generate_keys(directory: str | Path, force: bool = False) -> dict[str, Path]:
    """Server and client CURVE certificates (``*.key`` public, ``*.key_secret`` secret,
    readable by the owner only). Existing keys are replaced only with ``force``: a replaced
    server key locks every client out."""
    d = Path(directory)
    existing = sorted(p.name for name in ("server", "client") for p in (d / f"{name}.key", d / f"{name}.key_secret")
                      if p.exists())
    if existing and not force:
        raise VidpipeError(f"keys already in {d}: {', '.join(existing)} (--force replaces them)")
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    umask = os.umask(0o077)  # the secret files are never readable by others, not even for a moment
    try:
        for name in ("server", "client"):
            public, secret = zmq.auth.create_certificates(str(d), name)
            os.chmod(public, 0o644)
            out[f"{name}_public"], out[f"{name}_secret"] = Path(public), Path(secret)
    finally:
        os.umask(umask)
    return out


class ZmqSink(Sink):
    """Publishes every result (``pub``: drops for slow subscribers; ``push``: lossless)."""

    def __init__(self, config: ZmqSinkConfig, name: str | None = None) -> None:
        self.config = check_config(config, ZmqSinkConfig)
        self.endpoint, self.mode = config.endpoint, config.mode
        self.name = name or f"zmq:{config.endpoint}"
        self.lossless = config.mode == "push"
        self.publisher = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.seq = 0
        self.stream_seq: dict[str, int] = {}
        self.sent = 0
        self.bytes_sent = 0
        self.stop_event = threading.Event()  # set by the owning stage to abandon a blocked PUSH send
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._auth: ThreadAuthenticator | None = None
        self._last_send = time.monotonic()
        self._no_consumer = False  # a PUSH send timed out: send without waiting until one is taken
        self.drop_reason = f"no consumer took them within {config.send_timeout_s:g} s"

    def open(self) -> None:
        cfg = self.config
        self._ctx = zmq.Context()
        sock = self._ctx.socket(zmq.PUB if cfg.mode == "pub" else zmq.PUSH)
        sock.setsockopt(zmq.SNDHWM, cfg.hwm)
        if cfg.sndbuf_bytes:
            sock.setsockopt(zmq.SNDBUF, cfg.sndbuf_bytes)  # small: drops sooner, less latency
        sock.setsockopt(zmq.LINGER, 2000 if self.lossless else 200)
        try:
            if cfg.curve is not None:
                self._setup_curve(sock, cfg.curve)
            try:
                sock.bind(cfg.endpoint) if cfg.bind else sock.connect(cfg.endpoint)
            except zmq.ZMQError as exc:
                raise VidpipeError(f"zmq sink cannot {'bind' if cfg.bind else 'connect'} {cfg.endpoint}: {exc}") from exc
        except BaseException:
            sock.close(0)
            self._stop_auth()
            self._ctx.term()
            self._ctx = None
            raise
        self._sock = sock
        self._last_send = time.monotonic()

    def _setup_curve(self, sock: zmq.Socket, curve: CurveServerConfig) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        public, secret = load_key(curve.server_secret_key, "CURVE server secret key", need_secret=True)
        if check_allowed_clients(curve.allowed_clients) == 0:
            log.warning("zmq sink %s: no client public keys (*.key) in %s: no subscriber can connect",
                        self.endpoint, curve.allowed_clients)
        self._auth = ThreadAuthenticator(self._ctx)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(curve.allowed_clients))
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    def _send(self, parts: list[bytes]) -> bool:
        """Send one message; False when a PUSH send found no consumer in time (dropped)."""
        assert self._sock is not None
        if not self.lossless:
            self._sock.send_multipart(parts)  # PUB never blocks: at the high-water mark it drops
        elif not self._push(parts):
            return False
        self.sent += 1
        self.bytes_sent += sum(len(p) for p in parts)
        self._last_send = time.monotonic()
        return True

    def _push(self, parts: list[bytes]) -> bool:
        """PUSH blocks at the high-water mark or with no peer (back-pressure): wait in steps
        to notice an abort, at most ``send_timeout_s`` (not at all once that has run out)."""
        assert self._sock is not None
        deadline = time.monotonic() + (0.0 if self._no_consumer else self.config.send_timeout_s)
        while True:
            try:
                self._sock.send_multipart(parts, flags=zmq.NOBLOCK)
                break
            except zmq.Again:
                if self.stop_event.is_set():
                    raise StopStage() from None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if not self._no_consumer:
                        log.warning("zmq sink %s: no consumer took a result within %g s: dropping results "
                                    "(counted) until one does", self.endpoint, self.config.send_timeout_s)
                    self._no_consumer = True
                    return False
                self._sock.poll(max(1, min(50, int(remaining * 1000))), zmq.POLLOUT)
        if self._no_consumer:
            log.warning("zmq sink %s: a consumer takes results again (%d dropped so far)", self.endpoint, self.dropped)
            self._no_consumer = False
        return True

    def write(self, result: Result) -> None:
        cfg = self.config
        self.seq += 1
        stream_seq = self.stream_seq.get(result.stream_id, 0) + 1
        self.stream_seq[result.stream_id] = stream_seq
        header = to_record(result, cfg.mask_format, cfg.polygon_precision, self.seq, cfg.format)
        header["stream_seq"] = stream_seq
        header["publisher"] = self.publisher
        parts = [result.stream_id.encode(), json.dumps(header, separators=(",", ":")).encode()]
        if cfg.send_frames and result.image is not None:
            ok, jpeg = cv2.imencode(".jpg", result.image, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            if ok:
                parts.append(jpeg.tobytes())
        if not self._send(parts):
            self.dropped += 1

    def idle(self) -> None:
        heartbeat_s = self.config.heartbeat_s
        if self._sock is not None and heartbeat_s > 0 and time.monotonic() - self._last_send >= heartbeat_s:
            self.seq += 1
            beat = heartbeat_record(self.seq, self.publisher, time.time(), self.stream_seq)
            self._send([HEARTBEAT_TOPIC, json.dumps(beat).encode()])

    def _stop_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def close(self) -> None:
        if self._sock is not None:
            # After an abort (or with no consumer) queued messages are not waited for.
            self._sock.close(0 if self.stop_event.is_set() or self._no_consumer else None)
            self._sock = None
        self._stop_auth()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
