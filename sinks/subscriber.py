"""A client for vidpipe's ZeroMQ results: connect, pick streams, iterate results.

Gaps are found from each publisher's per-stream sequence numbers and counted. A failed
handshake (a wrong CURVE server key, a client key the publisher does not allow, CURVE on
one side only) is seen within a second or so (:mod:`sinks.handshake`): ``receive()``
raises :class:`HandshakeError` when the subscriber uses CURVE (or is asked to), else it is
counted and logged once. Malformed
or foreign messages are counted, logged (rate-limited) and skipped, or raise
:class:`MessageError` in strict mode; they never crash the client. Headers are checked
by the wire layer (:func:`pipeline.wire.parse.parse_record`): one that fails is malformed.

Example:
    >>> with Subscriber("tcp://127.0.0.1:5555", streams=["cam0"]) as sub:   # doctest: +SKIP
    ...     for msg in sub:
    ...         print(msg.stream, msg.frame, len(msg.detections), msg.to_supervision())

    >>> from pipeline.wire.records import SCHEMA
    >>> dets = detections_from_record({"schema": SCHEMA, "stream": "cam0", "frame": 0, "width": 64, "height": 48,
    ...     "detections": [{"bounding-box": {"left": 2, "top": 3, "width": 4, "height": 5}, "category": "circle",
    ...                     "class_id": 0, "score": 0.9, "track_id": 7}]})
    >>> dets.xyxy.tolist(), dets.category, dets.tracker_id.tolist()
    ([[2.0, 3.0, 6.0, 8.0]], ['circle'], [7])
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zmq

from pipeline.core.errors import VidpipeError
from pipeline.vision.detections import Detections
from pipeline.vision.result import Result
from pipeline.wire.parse import ResultRecord, WireError, parse_record
from pipeline.wire.records import HEARTBEAT_TOPIC, SCHEMA, is_heartbeat
from sinks.curve import client_keys
from sinks.from_record import _check_rles
from sinks.from_record import detections_from_record as detections_from_record  # part of this module's API
from sinks.handshake import HandshakeError as HandshakeError  # raised by receive(): part of this API
from sinks.handshake import HandshakeMonitor

log = logging.getLogger("vidpipe.subscriber")


class MessageError(VidpipeError):
    """A message that is not a vidpipe result (strict mode)."""


class _Skip(Exception):
    """A message the subscriber does not hand out (rejected, a heartbeat, another stream)."""


@dataclass
class SubscriberStats:
    received: int = 0
    heartbeats: int = 0
    gaps: int = 0  # places where messages went missing
    missed: int = 0  # messages missing in those gaps
    malformed: int = 0
    foreign: int = 0
    handshake_failures: int = 0


@dataclass
class Message:
    """One result as received: the JSON header, and the frame when one was sent."""

    stream: str
    header: dict[str, Any]
    image: np.ndarray | None = None
    gap_before: int = 0  # messages of this stream lost just before this one
    _detections: Detections | None = field(default=None, repr=False)
    _record: ResultRecord | None = field(default=None, repr=False)

    @property
    def record(self) -> ResultRecord:
        """The header as a checked record (parsed once)."""
        if self._record is None:
            self._record = parse_record(self.header)
        return self._record

    @property
    def frame(self) -> int:
        return self.record.frame

    @property
    def detections(self) -> Detections:
        if self._detections is None:
            self._detections = detections_from_record(self.record)
        return self._detections

    def to_supervision(self, masks: bool = True) -> Any:
        """``supervision.Detections`` of the message (full-frame masks on demand)."""
        return self.detections.to_supervision(masks=masks)

    def to_result(self) -> Result:
        """The message as a pipeline :class:`Result` (detections decoded, frame if sent)."""
        r = self.record
        h, w = r.require_image_hw()
        return Result(self.stream, r.frame, r.pts, r.captured_at, w, h, r.model, self.detections, timings=dict(r.timings),
                      latency_ms=r.latency_ms, drops=dict(r.drops), inferred=r.inferred, gap=r.gap,
                      stream_state=r.stream_state, image=self.image, source_path=r.source_path)


class Subscriber:
    """Receives results from a ZmqSink: ``sub`` (of a ``pub`` sink, ``streams`` picks the
    topics) or ``pull`` (of a ``push`` sink); optional CURVE client keys."""

    def __init__(self, url: str, streams: Sequence[str] | None = None, mode: str = "sub", bind: bool = False,
                 strict: bool = False, hwm: int = 1000, curve_client_secret: str | Path | None = None,
                 curve_server_public: str | Path | None = None, rcvbuf: int | None = None,
                 fail_on_handshake: bool | None = None) -> None:
        """``fail_on_handshake``: raise :class:`HandshakeError` when the handshake fails
        (default: with CURVE keys, when connecting: a bound subscriber has other peers);
        else count it and log it once."""
        if mode not in ("sub", "pull"):
            raise ValueError(f"subscriber mode must be sub or pull, got {mode!r}")
        self.url, self.mode, self.strict = url, mode, strict
        self.streams = set(streams) if streams else None
        self.stats = SubscriberStats()
        self._last_seq: dict[tuple[str, str], int] = {}  # (publisher, stream) -> stream_seq
        self._logged = 0
        curve = bool(curve_client_secret or curve_server_public)
        keys = client_keys(curve_client_secret, curve_server_public) if curve else None  # before any socket
        self._ctx: zmq.Context | None = zmq.Context()
        self._sock: zmq.Socket | None = self._ctx.socket(zmq.SUB if mode == "sub" else zmq.PULL)
        self._configure(self._sock, hwm, rcvbuf)
        if keys is not None:
            self._sock.curve_publickey, self._sock.curve_secretkey, self._sock.curve_serverkey = keys
        fail = curve and not bind if fail_on_handshake is None else fail_on_handshake
        self.handshake = HandshakeMonitor(self._sock, url, curve, fail)
        self._poller = zmq.Poller()
        for sock in (self._sock, self.handshake.socket):
            self._poller.register(sock, zmq.POLLIN)
        if mode == "sub":
            self._subscribe(self._sock)
        try:
            self._sock.bind(url) if bind else self._sock.connect(url)
        except zmq.ZMQError as exc:
            self.close()
            raise VidpipeError(f"subscriber cannot {'bind' if bind else 'connect'} {url}: {exc}") from exc

    def connect(self, url: str) -> None:
        """Also receive from the publisher at ``url`` (a SUB socket merges its publishers;
        each keeps its own per-stream sequence numbers for the gap count)."""
        if self._sock is None:
            raise VidpipeError(f"subscriber of {self.url} is closed")
        try:
            self._sock.connect(url)
        except zmq.ZMQError as exc:
            raise VidpipeError(f"subscriber cannot connect {url}: {exc}") from exc

    @staticmethod
    def _configure(sock: zmq.Socket, hwm: int, rcvbuf: int | None) -> None:
        sock.setsockopt(zmq.RCVHWM, hwm)
        if rcvbuf:
            sock.setsockopt(zmq.RCVBUF, rcvbuf)
        sock.setsockopt(zmq.LINGER, 0)

    def _subscribe(self, sock: zmq.Socket) -> None:
        for topic in (self.streams or [""]):
            sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sock.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.handshake.close()
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def _reject(self, kind: str, why: str) -> _Skip:
        """Count (and log, rate-limited) a rejected message; strict mode raises instead."""
        setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        if self.strict:
            raise MessageError(f"{kind} message: {why}")
        if self._logged < 10:
            log.warning("skipping a %s message: %s", kind, why)
            self._logged += 1
        return _Skip()

    def _header(self, parts: list[bytes]) -> dict[str, Any]:
        """The JSON header of a result message (heartbeats are counted and skipped)."""
        if len(parts) not in (2, 3):
            raise self._reject("malformed", f"{len(parts)} parts, expected 2 or 3")
        try:
            header = json.loads(parts[1])
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested past Python's stack
            raise self._reject("malformed", f"header is not JSON ({type(exc).__name__}: {str(exc)[:80]})") from None
        if not isinstance(header, dict):
            raise self._reject("malformed", "header is not a JSON object")
        if is_heartbeat(parts[0], header):
            self.stats.heartbeats += 1
            raise _Skip()
        if header.get("schema") != SCHEMA:
            raise self._reject("foreign", f"schema {header.get('schema')!r}")
        return header

    def _record(self, topic: bytes, header: dict[str, Any]) -> ResultRecord:
        """The checked record; its stream must be the topic, its size given."""
        try:
            record = parse_record(header)
            record.require_image_hw()
            stream = topic.decode()
            _check_rles(record)
        except (WireError, UnicodeDecodeError) as exc:
            raise self._reject("malformed", str(exc)) from None
        if stream != record.stream:
            raise self._reject("malformed", f"topic {stream!r} is not the header's stream {record.stream!r}")
        return record

    def _image(self, parts: list[bytes]) -> np.ndarray | None:
        if len(parts) < 3:
            return None
        try:
            image = cv2.imdecode(np.frombuffer(parts[2], np.uint8), cv2.IMREAD_COLOR) if parts[2] else None
        except cv2.error:
            image = None
        if image is None:
            raise self._reject("malformed", "frame part is not a JPEG")
        return image

    def _count_gap(self, record: ResultRecord) -> int:
        """Messages of this publisher's stream lost since the last one received."""
        seq = record.stream_seq
        if seq is None:
            return 0
        key = (record.publisher or "", record.stream)
        last = self._last_seq.get(key)
        self._last_seq[key] = seq
        if last is None or seq <= last + 1:
            return 0
        self.stats.gaps += 1
        self.stats.missed += seq - last - 1
        return seq - last - 1

    def _parse(self, parts: list[bytes]) -> Message | None:
        try:
            header = self._header(parts)
            record = self._record(parts[0], header)
            if self.streams is not None and record.stream not in self.streams:
                return None  # a prefix match of the subscription, not one of ours
            image = self._image(parts)
        except _Skip:
            return None
        gap = self._count_gap(record)
        self.stats.received += 1
        return Message(record.stream, header, image, gap, _record=record)

    def _check_handshake(self) -> None:
        try:
            self.handshake.check()
        finally:
            self.stats.handshake_failures = self.handshake.failures

    def receive(self, timeout_s: float | None = None) -> Message | None:
        """The next result, or None when ``timeout_s`` passes without one. Raises
        :class:`HandshakeError` when the handshake failed (see ``fail_on_handshake``)."""
        if self._sock is None:
            raise VidpipeError(f"subscriber of {self.url} is closed")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self._check_handshake()
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = dict(self._poller.poll(None if remaining is None else int(remaining * 1000)))
            if self._sock in ready:
                msg = self._parse(self._sock.recv_multipart())
                if msg is not None:
                    return msg
            if deadline is not None and time.monotonic() >= deadline:
                self._check_handshake()
                return None

    def iter(self, timeout_s: float | None = None) -> Iterator[Message]:
        """Results until ``timeout_s`` passes without one (forever when None)."""
        while (msg := self.receive(timeout_s)) is not None:
            yield msg

    def __iter__(self) -> Iterator[Message]:
        return self.iter(None)
