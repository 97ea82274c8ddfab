"""A client for vidpipe's ZeroMQ results: connect, pick streams, iterate results.

Gaps are found from each publisher's per-stream sequence numbers and counted. Malformed
or foreign messages are counted, logged (rate-limited) and skipped, or raise
:class:`MessageError` in strict mode; they never crash the client.

Example:
    >>> with Subscriber("tcp://127.0.0.1:5555", streams=["cam0"]) as sub:   # doctest: +SKIP
    ...     for msg in sub:
    ...         print(msg.stream, msg.frame, len(msg.detections), msg.to_supervision())
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
import zmq.auth
from pipeline.vision.geometry import mask_boxes
from pipeline.vision.result import Result

from pipeline.core.errors import VidpipeError
from pipeline.vision import rle
from pipeline.vision.detections import Detections
from pipeline.wire.records import SCHEMA, box_from_wire, decode_bitmask
from sinks.zmq import HEARTBEAT_TOPIC

log = logging.getLogger("vidpipe.subscriber")


class MessageError(VidpipeError):
    """A message that is not a vidpipe result (strict mode)."""


@dataclass
class SubscriberStats:
    received: int = 0
    heartbeats: int = 0
    gaps: int = 0  # places where messages went missing
    missed: int = 0  # messages missing in those gaps
    malformed: int = 0
    foreign: int = 0


@dataclass
class Message:
    """One result as received: the JSON header, and the frame when one was sent."""

    stream: str
    header: dict[str, Any]
    image: np.ndarray | None = None
    gap_before: int = 0  # messages of this stream lost just before this one
    _detections: Detections | None = field(default=None, repr=False)

    @property
    def frame(self) -> int:
        return int(self.header["frame"])

    @property
    def detections(self) -> Detections:
        if self._detections is None:
            self._detections = detections_from_record(self.header)
        return self._detections

    def to_supervision(self, masks: bool = True):
        return self.detections.to_supervision(masks=masks)

    def to_result(self) -> Result:
        """The message as a pipeline :class:`Result` (detections decoded, frame if sent)."""
        h = self.header
        return Result(self.stream, self.frame, h.get("pts"), float(h.get("captured_at", 0.0)), int(h["width"]),
                      int(h["height"]), str(h.get("model", "")), self.detections, timings=dict(h.get("timings", {})),
                      latency_ms=float(h.get("latency_ms", 0.0)), drops=dict(h.get("drops", {})),
                      inferred=bool(h.get("inferred", True)), gap=bool(h.get("gap", False)),
                      stream_state=str(h.get("stream_state", "streaming")), image=self.image)


def detections_from_record(rec: dict[str, Any]) -> Detections:
    """Detections (masks cropped to boxes) from a record in any of the three formats."""
    h, w = int(rec["height"]), int(rec["width"])
    boxes, scores, classes, tracks, rles, names = [], [], [], [], [], []
    fmt = rec.get("format", "vidpipe")
    items = rec.get("detections") if fmt == "vidpipe" else rec.get("predictions") if fmt == "roboflow" else rec.get("objects")
    for d in items or []:
        if fmt == "roboflow":
            boxes.append([d["x"] - d["width"] / 2, d["y"] - d["height"] / 2, d["x"] + d["width"] / 2, d["y"] + d["height"] / 2])
            scores.append(d["confidence"])
            classes.append(d.get("class_id", -1))
            tracks.append(d.get("tracker_id", -1))
            names.append(d.get("class", ""))
            rles.append(d.get("rle"))
        else:
            boxes.append(box_from_wire(d["bounding-box"]))
            scores.append(d["score"])
            classes.append(d.get("class_id", -1))
            tracks.append(d.get("track_id", -1))
            names.append(d.get("category", ""))
            r = d.get("rle")
            if r is None and "bitmask" in d:
                r = d["bitmask"]  # decoded below, already cropped
            rles.append({"size": [h, w], "counts": r} if isinstance(r, str) else r)
    xyxy = np.array(boxes, np.float64).reshape(-1, 4)
    masks = None
    if rles and all(r is not None for r in rles):
        full = []
        for r in rles:
            if "bits" in r:
                m = np.zeros((h, w), bool)
                bx0, by0, bx1, by1 = r["box"]
                m[by0:by1, bx0:bx1] = decode_bitmask(r)
            else:
                m = rle.decode(r)
            full.append(m)
        # A box rounded inside its mask's pixel range (centre/size formats) grows just
        # enough for the crop to keep every mask pixel.
        px = mask_boxes(xyxy, (h, w))
        for i, m in enumerate(full):
            ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
            if len(ys):
                if xs[0] < px[i, 0]:
                    xyxy[i, 0] = xs[0]
                if ys[0] < px[i, 1]:
                    xyxy[i, 1] = ys[0]
                if xs[-1] + 1 > px[i, 2]:
                    xyxy[i, 2] = xs[-1] + 1
                if ys[-1] + 1 > px[i, 3]:
                    xyxy[i, 3] = ys[-1] + 1
        masks = [m[b[1]:b[3], b[0]:b[2]] for m, b in zip(full, mask_boxes(xyxy, (h, w)))]
    class_names: list[str] = []
    if names:
        # Class names by id, as far as the message tells them.
        by_id = {c: n for c, n in zip(classes, names) if c >= 0}
        class_names = [by_id.get(i, str(i)) for i in range(max(by_id) + 1)] if by_id else []
    return Detections(xyxy, scores, classes, (h, w), masks, np.array(tracks, np.int64), class_names)


class Subscriber:
    def __init__(self, url: str, streams: Sequence[str] | None = None, mode: str = "sub", bind: bool = False,
                 strict: bool = False, hwm: int = 1000, curve_client_secret: str | Path | None = None,
                 curve_server_public: str | Path | None = None, rcvbuf: int | None = None) -> None:
        if mode not in ("sub", "pull"):
            raise ValueError(f"subscriber mode must be sub or pull, got {mode!r}")
        self.url, self.mode, self.strict = url, mode, strict
        self.streams = set(streams) if streams else None
        self.stats = SubscriberStats()
        self._last_seq: dict[tuple[str, str], int] = {}  # (publisher, stream) -> stream_seq
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB if mode == "sub" else zmq.PULL)
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        if rcvbuf:
            self._sock.setsockopt(zmq.RCVBUF, rcvbuf)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve_client_secret or curve_server_public:
            if not (curve_client_secret and curve_server_public):
                raise VidpipeError("CURVE needs both the client secret key and the server public key")
            public, secret = zmq.auth.load_certificate(str(curve_client_secret))
            server_public, _ = zmq.auth.load_certificate(str(curve_server_public))
            self._sock.curve_secretkey, self._sock.curve_publickey = secret, public
            self._sock.curve_serverkey = server_public
        if mode == "sub":
            for topic in (self.streams or [""]):
                self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
            self._sock.setsockopt(zmq.SUBSCRIBE, HEARTBEAT_TOPIC)
        try:
            self._sock.bind(url) if bind else self._sock.connect(url)
        except zmq.ZMQError as exc:
            self.close()
            raise VidpipeError(f"subscriber cannot {'bind' if bind else 'connect'} {url}: {exc}") from exc
        self._logged = 0

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def _reject(self, kind: str, why: str) -> None:
        setattr(self.stats, kind, getattr(self.stats, kind) + 1)
        if self.strict:
            raise MessageError(f"{kind} message: {why}")
        if self._logged < 10:
            log.warning("skipping a %s message: %s", kind, why)
            self._logged += 1

    def _parse(self, parts: list[bytes]) -> Message | None:
        if len(parts) not in (2, 3):
            self._reject("malformed", f"{len(parts)} parts, expected 2 or 3")
            return None
        try:
            header = json.loads(parts[1])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._reject("malformed", f"header is not JSON ({exc})")
            return None
        if not isinstance(header, dict):
            self._reject("malformed", "header is not a JSON object")
            return None
        schema = header.get("schema")
        if parts[0] == HEARTBEAT_TOPIC and schema == "vidpipe.heartbeat/1":
            self.stats.heartbeats += 1
            return None
        if schema != SCHEMA:
            self._reject("foreign", f"schema {schema!r}")
            return None
        try:
            stream = parts[0].decode()
            if stream != header["stream"]:
                raise ValueError(f"topic {stream!r} is not the header's stream {header['stream']!r}")
            int(header["frame"]), int(header["width"]), int(header["height"])
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            self._reject("malformed", str(exc))
            return None
        if self.streams is not None and stream not in self.streams:
            return None  # a prefix match of the subscription, not one of ours
        image = None
        if len(parts) == 3:
            image = cv2.imdecode(np.frombuffer(parts[2], np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                self._reject("malformed", "frame part is not a JPEG")
                return None
        gap = 0
        seq = header.get("stream_seq")
        if isinstance(seq, int):
            key = (str(header.get("publisher", "")), stream)
            last = self._last_seq.get(key)
            if last is not None and seq > last + 1:
                gap = seq - last - 1
                self.stats.gaps += 1
                self.stats.missed += gap
            self._last_seq[key] = seq
        self.stats.received += 1
        return Message(stream, header, image, gap)

    def receive(self, timeout_s: float | None = None) -> Message | None:
        """The next result, or None when ``timeout_s`` passes without one."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self._sock.poll(None if remaining is None else int(remaining * 1000), zmq.POLLIN) == 0:
                return None
            msg = self._parse(self._sock.recv_multipart())
            if msg is not None:
                return msg
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def iter(self, timeout_s: float | None = None) -> Iterator[Message]:
        """Results until ``timeout_s`` passes without one (forever when None)."""
        while (msg := self.receive(timeout_s)) is not None:
            yield msg

    def __iter__(self) -> Iterator[Message]:
        return self.iter(None)
