"""Stage threads and the bus they report on (GStreamer's vocabulary: elements post
errors and state changes on a bus; the pipeline's owner reads it).

Every stage is one ``threading.Thread`` owned by the pipeline, which starts, stops and
joins it. An exception in ``run()`` never dies silently: it is posted on the bus as a
:class:`StageError` naming the stage and the stream it was working on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.core.errors import StageError
from pipeline.core.items import EndOfStream
from pipeline.core.ring import RingBuffer, RingClosed, RingEmpty

log = logging.getLogger("vidpipe.stage")

POLL_S = 0.05  # how often a blocked stage looks at its stop flag


BusKind = Literal["error", "finished", "sink_failed"]


@dataclass
class BusMessage:
    """``error``: a stage raised; ``finished``: a stage's thread ended; ``sink_failed``: a
    sink's first failed write (the sink carries on; the owner decides)."""

    kind: BusKind
    stage: str
    stream: str | None = None
    error: StageError | None = None


class Bus:
    """A thread-safe message queue from the stages to the pipeline's owner."""

    def __init__(self) -> None:
        self._queue: queue.Queue[BusMessage] = queue.Queue()

    def post(self, message: BusMessage) -> None:
        self._queue.put(message)

    def poll(self, timeout: float) -> BusMessage | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class StopStage(Exception):
    """Raised inside a stage when it was asked to stop while waiting."""


class Stage:
    """Base of every stage: a thread running ``run()`` until done or stopped.

    ``per_stream`` says whether the stage belongs to one stream (source, decoder) or is
    shared by all streams (inference, tracker, sink); the pipeline treats their failures
    differently (one stream ends, or the whole pipeline stops).
    """

    per_stream = False

    def __init__(self, name: str, bus: Bus, stream_id: str | None = None) -> None:
        self.name = name
        self.bus = bus
        self.stream_id = stream_id
        self.current_stream: str | None = stream_id  # named in errors
        self._stop = threading.Event()
        self._abandon = False  # stop(now=True): a put waiting for space gives up too
        self._thread: threading.Thread | None = None
        self.busy_s = 0.0  # time spent working, not waiting
        self.put_wait_s = 0.0  # time blocked on full output rings (back-pressure)
        self.items = 0
        self.started_at = 0.0
        self.finished_at = 0.0

    # -- lifecycle (called by the owner) --------------------------------------------------
    def start(self) -> None:
        self.started_at = time.perf_counter()
        self._thread = threading.Thread(target=self._main, name=f"vidpipe:{self.name}", daemon=True)
        self._thread.start()

    def stop(self, now: bool = False) -> None:
        """Ask the thread to stop. ``now``: also give up a put that waits for space (a
        stream removed without draining); otherwise a waiting put still delivers."""
        self._abandon = self._abandon or now
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """True when the thread has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- inside the thread ----------------------------------------------------------------
    def _main(self) -> None:
        try:
            self.run()
        except StopStage:
            pass
        except BaseException as exc:  # noqa: BLE001 - every failure goes on the bus
            err = StageError(self.name, self.current_stream, exc)
            log.error("%s", err, exc_info=exc)
            self.bus.post(BusMessage("error", self.name, self.current_stream, err))
            try:
                self.on_failure(exc)
            except Exception:  # noqa: BLE001
                log.exception("stage %s: cleanup after failure failed", self.name)
        finally:
            try:
                self.cleanup()
            except Exception as exc:  # noqa: BLE001
                log.exception("stage %s: cleanup failed", self.name)
                self.bus.post(BusMessage("error", self.name, self.current_stream, StageError(self.name, self.current_stream, exc)))
            self.finished_at = time.perf_counter()
            self.bus.post(BusMessage("finished", self.name, self.stream_id))

    def run(self) -> None:
        raise NotImplementedError

    def on_failure(self, exc: BaseException) -> None:
        """Called in the thread after ``run()`` raised (e.g. to end its stream downstream)."""

    def cleanup(self) -> None:
        """Release resources; always called when the thread ends."""

    # -- helpers for subclasses -----------------------------------------------------------
    def end_stream_downstream(self, ring: RingBuffer[Any] | None, exc: BaseException) -> None:
        """After a failure: end this stage's stream in ``ring`` so the stages after it
        finish the stream (the error itself is on the bus)."""
        if ring is None or self.stream_id is None:
            return
        try:
            self.put(ring, EndOfStream(self.stream_id, "error", exc))
        except StopStage:
            pass

    def put(self, ring: RingBuffer[Any], item: Any) -> bool:
        """Put into ``ring``. A ``block`` ring is waited on until it takes the item or is
        closed (the pipeline closes rings when it aborts); a graceful stop lets
        downstream drain instead. Returns False if the ring's policy dropped the item."""
        try:
            if ring.policy != "block":
                return ring.put(item)
            t0 = time.perf_counter()
            if not ring.put(item, timeout=0):
                while not ring.put(item, timeout=POLL_S):
                    if self._abandon:
                        raise StopStage()
                self.put_wait_s += time.perf_counter() - t0
            return True
        except RingClosed:
            raise StopStage() from None

    def get(self, ring: RingBuffer[Any]) -> Any:
        """Next item of ``ring``; raises StopStage when stopped or the ring is closed."""
        while True:
            if self.stopping:
                raise StopStage()
            try:
                return ring.get(timeout=POLL_S)
            except RingEmpty:
                continue
            except RingClosed:
                raise StopStage() from None

    def poll(self, ring: RingBuffer[Any]) -> Any:
        """Next item of ``ring``, or None after POLL_S (so the caller can look at what else
        may end it); raises StopStage when stopped or the ring is closed."""
        if self.stopping:
            raise StopStage()
        try:
            return ring.get(timeout=POLL_S)
        except RingEmpty:
            return None
        except RingClosed:
            raise StopStage() from None

    def stats(self) -> dict[str, Any]:
        end = self.finished_at or time.perf_counter()
        wall = max(1e-9, end - self.started_at) if self.started_at else 0.0
        return {
            "items": self.items,
            "busy_s": round(self.busy_s, 3),
            "busy_fraction": round(self.busy_s / wall, 3) if wall else 0.0,
            "blocked_s": round(self.put_wait_s, 3),
            "fps": round(self.items / wall, 2) if wall else 0.0,
        }
