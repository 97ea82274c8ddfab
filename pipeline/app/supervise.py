"""Supervising a pipeline from the thread that runs it (``run()`` or the iterator): its
outputs opened at the start, the bus read (errors that end one stream or stop everything,
sinks that fail), a stop bounded (the drain, then the abort), removed streams released
once their end has passed, and the run finished (every thread joined, what was lost
counted, the run's errors and problems collected)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from pipeline.app import shutdown
from pipeline.core.stage import BusMessage, Stage

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.pipeline import Pipeline

log = logging.getLogger("vidpipe.pipeline")

JOIN_TIMEOUT_S = 3.0


def open_outputs(p: Pipeline) -> None:
    """At the start, on the owner's thread: every sink opens, then the metrics endpoint; a
    failure closes what opened and is raised (nothing has started)."""
    opened = []
    try:
        for sink in p.sinks:
            sink.open()
            opened.append(sink)
        if p.metrics_config is not None:
            p.metrics_port = p.metrics.serve(p.metrics_config.port, p.metrics_config.host)
    except BaseException:
        for sink in opened:
            sink.close()
        raise


def handle(p: Pipeline, msg: BusMessage) -> None:
    """One bus message: a failing sink (the run stops once every sink fails), an error in a
    stream's own stage (that stream ends, marked failed) or in a shared stage (all stop)."""
    if msg.kind == "sink_failed" and msg.error is not None:
        failing = [s for s in p.sink_stages if s.errors]
        if len(failing) == len(p.sink_stages):
            log.error("every sink is failing: stopping")
            p.errors.append(msg.error)
            p.abort()
        else:
            log.error("%s (the other sinks carry on)", msg.error)
        return
    if msg.kind != "error" or msg.error is None:
        return
    p.errors.append(msg.error)
    stage = next((s for s in p.stages if s.name == msg.stage), None)
    if (stage is not None and stage.per_stream) or (stage is None and msg.stream in p.control.removed):
        if msg.stream in p.streams:
            p.streams[msg.stream].set_state("failed")
            p.streams[msg.stream].error = str(msg.error)
        log.error("stream %s ended by an error; other streams continue", msg.stream)
    else:
        p.abort()


def done(p: Pipeline) -> bool:
    """The last stage has finished: every sink (or, without sinks, the tracker)."""
    tail: list[Stage] = [*p.sink_stages] or [p.tracker]
    return all(not s.alive for s in tail) and p.tracker.join(0)


def finish(p: Pipeline) -> None:
    """Once: stop and join every thread, release removed streams, count what an abort
    lost, collect the run's errors and problems."""
    if p._finished:
        return
    p._finished = True
    p._close_all()  # everything downstream is done; release any producer still blocked
    stuck = [s.name for s in p.stages if not s.join(JOIN_TIMEOUT_S)]
    p.control.finish()
    if p._aborted:
        shutdown.count_aborted(p)
    if p._ended_before_stop is not None:
        shutdown.mark_stopped(p, p._ended_before_stop)
    p.metrics.close()
    while (msg := p.bus.poll(0)) is not None:
        if msg.kind == "error" and msg.error is not None and msg.error not in p.errors:
            p.errors.append(msg.error)
    p._t_end = time.perf_counter()
    # What the run did not deliver: truncated inputs, results sinks failed or dropped.
    p.problems.extend([*p.control.problems, *(x for st in p.streams.values() for x in st.problems)])
    p.problems.extend(shutdown.sink_drop_problems(p))
    p.problems.extend(x for x in (st.problem() for st in p.sink_stages) if x)
    if stuck:
        log.error("threads still running after stop: %s", stuck)
    log.info("pipeline %s finished in %.2f s", p.name, p._t_end - p._t_start)


def until_done(p: Pipeline) -> None:
    """Read the bus until the last stage has finished. A stop is bounded by
    ``drain_timeout_s`` (then it aborts), an abort by JOIN_TIMEOUT_S (a stage stuck in a
    call that never returns is left behind, and named by ``finish``)."""
    while not done(p):
        now = time.monotonic()
        if p._abort_deadline is not None and now > p._abort_deadline:
            return
        if p._drain_deadline is not None and not p._aborted and now > p._drain_deadline:
            log.error("the graceful stop took over %g s: aborting", p.drain_timeout_s)
            p.abort()
        msg = p.bus.poll(0.05)
        if msg is not None:
            handle(p, msg)
        p.control.release_ready()
