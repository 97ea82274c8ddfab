"""How a run ends early: SIGINT/SIGTERM, the bounded drain, the abort and what it lost.

- The first SIGINT or SIGTERM stops the sources; what is in flight finishes and the sinks
  flush (a graceful drain). The drain is bounded: after ``Pipeline.drain_timeout_s`` the
  pipeline aborts by itself. Every blocking call in the stages has a timeout (a ZeroMQ
  PUSH send included: see ``ZmqSinkConfig.send_timeout_s``), so the bound holds.
- A second signal aborts at once: every stage stops, every ring closes. What was still
  in the rings or in flight is counted, per stream, as dropped with reason ``aborted``;
  results a sink never wrote are counted per sink; both go into ``Pipeline.problems``.
- Streams that had not ended by themselves end in state ``stopped``; ``vidpipe run``
  exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pipeline.core.items import Packet
from pipeline.core.ring import RingBuffer, RingClosed

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.pipeline import Pipeline

log = logging.getLogger("vidpipe.pipeline")

DRAIN_TIMEOUT_S = 30.0  # a graceful stop that takes longer than this aborts
END_STATES = ("ended", "failed")


@contextlib.contextmanager
def signal_handlers(pipeline: Pipeline, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM stop ``pipeline`` while the block runs (main thread only): the first
    drains, the next aborts. The previous handlers come back after."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if pipeline.stopped_by is None:
            pipeline.stopped_by = signum
            log.warning("%s: stopping: sources stop, frames in flight finish (again to abort)", name)
            pipeline.stop()
        else:
            log.warning("%s again: aborting; what is in flight is lost (counted as dropped: aborted)", name)
            pipeline.abort()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def drain_ring(ring: RingBuffer) -> list[object]:
    """What is left in a ring nobody reads any more."""
    items = []
    while True:
        try:
            item = ring.get_nowait()
        except RingClosed:
            break
        if item is None:
            break
        items.append(item)
    return items


def discard_sink_rings(pipeline: Pipeline) -> None:
    """An abort: the sinks write nothing more (a closed ring still hands out what it holds,
    which a graceful end wants and an abort does not); ``count_aborted`` counts it."""
    for stage in pipeline.sink_stages:
        drain_ring(stage.inp)


def count_aborted(pipeline: Pipeline) -> None:
    """After an abort (every thread joined): count what was lost, per stream and per sink,
    into the stream counters and ``pipeline.problems``."""
    lost: dict[str, int] = {}
    for sid, stats in pipeline.streams.items():
        # Decoded frames that never became results: in the frame ring, the batch, the results ring.
        n = stats.frames - stats.results - stats.drops_snapshot().get("frame_ring_full", 0)
        ring = next((r for r in pipeline.rings if r.name == f"packets:{sid}"), None)
        if ring is not None:  # packets read but never decoded
            n += sum(isinstance(p, Packet) for p in drain_ring(ring))
        if n > 0:
            stats.drop("aborted", n)
            lost[sid] = n
    if lost:
        per_stream = ", ".join(f"{sid}: {n}" for sid, n in lost.items())
        pipeline.problems.append(f"aborted: {sum(lost.values())} frames lost ({per_stream})")
    results = sum(stats.results for stats in pipeline.streams.values())
    for stage in pipeline.sink_stages:  # every sink takes every result the tracker counted
        unwritten = results - stage.items
        if unwritten > 0:
            pipeline.problems.append(f"sink {stage.sink.name}: {unwritten} results not written (aborted)")


def sink_drop_problems(pipeline: Pipeline) -> list[str]:
    """One line per sink that gave up on results without failing (e.g. no PUSH consumer)."""
    return [f"sink {st.sink.name}: {st.sink.dropped} results dropped: {st.sink.drop_reason or 'see the log'}"
            for st in pipeline.sink_stages if st.sink.dropped]


def ended_streams(pipeline: Pipeline) -> set[str]:
    """Streams that have ended by themselves (or failed) so far: a stop does not rename them."""
    return {sid for sid, stats in pipeline.streams.items() if stats.state in END_STATES}


def mark_stopped(pipeline: Pipeline, ended_before: set[str]) -> None:
    """Streams that a stop or an abort ended (not their own end, not a failure): ``stopped``."""
    for sid, stats in pipeline.streams.items():
        if sid not in ended_before and stats.state != "failed":
            stats.set_state("stopped")
