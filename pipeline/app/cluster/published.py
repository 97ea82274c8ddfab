"""A worker's own ZeroMQ publisher, numbered as the control plane numbers its results.

With ``ClusterConfig.publish_host`` each worker publishes its results (PUB, bound to a
free port of that address) and announces the endpoint to the control plane (its status
lists it per worker); :class:`pipeline.app.cluster.subscriber.ClusterSubscriber` follows
them all. The publisher is a :class:`RenumberedSink` around a plain ``ZmqSink`` so that a
subscriber sees the indices the control plane delivers: a resumed file's frames at or
before its watermark are not sent again, and a moved live stream's indices go on after it.

Example:
    >>> from pipeline.vision.detections import Detections
    >>> from pipeline.vision.result import Result
    >>> from sinks.callback import CallbackSink
    >>> got = []
    >>> sink = RenumberedSink(CallbackSink(lambda r: got.append(r.frame_index)))
    >>> sink.renumber("cam", offset=10, after=-1)
    >>> sink.write(Result("cam", 0, None, 0.0, 8, 8, "m", Detections.empty((8, 8)))); got
    [10]
"""

from __future__ import annotations

import socket
from dataclasses import replace

from pipeline.core.items import EndOfStream
from pipeline.vision.result import Result
from sinks.base import Sink
from sinks.config import ZmqSinkConfig
from sinks.zmq import ZmqSink


class RenumberedSink(Sink):
    """Another sink, with per-stream frame offsets and a resume point (see the module docstring)."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.name, self.lossless, self.config = inner.name, inner.lossless, inner.config
        self.offsets: dict[str, int] = {}
        self.after: dict[str, int] = {}
        self.gap_next: set[str] = set()  # a live stream that moved here: its first result follows a gap

    def renumber(self, stream_id: str, offset: int, after: int) -> None:
        """Before the stream's first result: add ``offset``, skip indices up to ``after``."""
        self.offsets[stream_id], self.after[stream_id] = offset, after
        if offset:
            self.gap_next.add(stream_id)

    def write(self, result: Result) -> None:
        if result.frame_index <= self.after.get(result.stream_id, -1):
            return
        offset = self.offsets.get(result.stream_id, 0)
        if not offset:
            self.inner.write(result)
            return
        gap = result.gap or result.stream_id in self.gap_next
        self.gap_next.discard(result.stream_id)
        # A copy: the same Result goes to the worker's outbox, numbered by the control plane.
        self.inner.write(replace(result, frame_index=result.frame_index + offset, gap=gap))

    def bind_streams(self, streams: list[str]) -> None:
        self.inner.bind_streams(streams)

    def open(self) -> None:
        self.inner.open()

    def begin_run(self) -> None:
        self.inner.begin_run()

    def end_stream(self, eos: EndOfStream) -> None:
        self.offsets.pop(eos.stream_id, None)
        self.after.pop(eos.stream_id, None)
        self.gap_next.discard(eos.stream_id)
        self.inner.end_stream(eos)

    def idle(self) -> None:
        self.inner.idle()

    def close(self) -> None:
        self.inner.close()


def worker_publisher(host: str, advertise: str) -> tuple[RenumberedSink, str]:
    """A PUB sink bound to a free port of ``host``; it and the endpoint to announce
    (``advertise``: the address subscribers reach this node at)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    sink = ZmqSink(ZmqSinkConfig(endpoint=f"tcp://{host}:{port}", mode="pub", bind=True), name="worker-pub")
    return RenumberedSink(sink), f"tcp://{advertise}:{port}"
