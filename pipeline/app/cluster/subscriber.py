"""Following every publisher of a cluster pipeline in one call.

With ``cluster: {publish_host: ...}`` each worker publishes its own results; the control
plane knows the endpoints (its status lists each worker's ``publisher``). A
:class:`ClusterSubscriber` asks for them (``publishers``: a callable, e.g. from a
``vidpipe serve --cluster`` pipeline, :meth:`ClusterSubscriber.of_server`), connects one
SUB socket to them all, connects to new ones as workers come (checked every
``refresh_s``), and hands results out with per-stream order kept: a result at or below
the last one of its stream (a frame the lost worker had published, sent again by the new
one) is dropped and counted.

Example:
    >>> with ClusterSubscriber.of_server("http://127.0.0.1:9001", "site") as sub:  # doctest: +SKIP
    ...     for msg in sub.iter(timeout_s=10):
    ...         print(msg.stream, msg.frame, len(msg.detections))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pipeline.core.errors import VidpipeError
from sinks.subscriber import Message, Subscriber, SubscriberStats

REFRESH_S = 1.0


class ClusterSubscriber:
    """See the module docstring; ``streams``: only these (default every stream)."""

    def __init__(self, publishers: Callable[[], Iterable[str]], streams: Sequence[str] | None = None,
                 refresh_s: float = REFRESH_S) -> None:
        self.publishers, self.streams, self.refresh_s = publishers, streams, refresh_s
        self.sub: Subscriber | None = None
        self.connected: set[str] = set()
        self.last: dict[str, int] = {}  # per stream: the last frame handed out
        self.duplicates = 0
        self._next_refresh = 0.0

    @classmethod
    def of_server(cls, url: str, pipeline_id: str, api_key: str | None = None, **kw: Any) -> ClusterSubscriber:
        """The publishers of a ``vidpipe serve --cluster`` pipeline (``GET /pipelines/{id}``)."""
        import httpx

        def publishers() -> list[str]:
            r = httpx.get(f"{url.rstrip('/')}/pipelines/{pipeline_id}", params={"api_key": api_key} if api_key else None,
                          timeout=10)
            if r.status_code != 200:
                raise VidpipeError(f"pipeline {pipeline_id} at {url}: HTTP {r.status_code}: {r.text[:200]}")
            workers = r.json().get("cluster", {}).get("workers", {})
            return [w["publisher"] for w in workers.values() if w.get("publisher")]

        return cls(publishers, **kw)

    def refresh(self) -> None:
        """Connect to publishers that appeared since the last look."""
        self._next_refresh = time.monotonic() + self.refresh_s
        for url in sorted(set(self.publishers()) - self.connected):
            if self.sub is None:
                self.sub = Subscriber(url, self.streams)
            else:
                self.sub.connect(url)
            self.connected.add(url)

    def receive(self, timeout_s: float | None = None) -> Message | None:
        """The next result in its stream's order, or None after ``timeout_s`` without one."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while deadline is None or time.monotonic() < deadline:
            if time.monotonic() >= self._next_refresh:
                self.refresh()
            wait = self.refresh_s if deadline is None else min(self.refresh_s, max(0.0, deadline - time.monotonic()))
            if self.sub is None:
                time.sleep(wait)  # no publisher announced yet: look again after this
                continue
            msg = self.sub.receive(wait)
            if msg is None:
                continue
            if msg.frame <= self.last.get(msg.stream, -1):
                self.duplicates += 1
                continue
            self.last[msg.stream] = msg.frame
            return msg
        return None

    @property
    def stats(self) -> SubscriberStats:
        """The merged subscriber's counts (received, gaps per publisher, malformed ...)."""
        return self.sub.stats if self.sub is not None else SubscriberStats()

    def iter(self, timeout_s: float | None = None) -> Iterator[Message]:
        while (msg := self.receive(timeout_s)) is not None:
            yield msg

    def close(self) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = None

    def __enter__(self) -> ClusterSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
