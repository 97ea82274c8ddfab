"""A pipeline whose streams run on a Ray cluster: ``vidpipe run CONFIG --cluster ray[://ADDRESS]``.

The same YAML as ``vidpipe run``: the model, batching and tracker go to every worker
(each loads the model once, for the streams placed on it); the streams are placed by the
control plane (:mod:`pipeline.app.cluster.control`); the sinks run here, in this process,
fed with each result as it is delivered, so a file analysed across the loss of a worker
still gets exactly one result per frame in its JSONL, video or ZeroMQ output.
The ``cluster:`` section (:class:`ClusterConfig`) sets each worker's resources and capacity.

    >>> from pipeline.app.config import load_config_dict
    >>> cfg = load_config_dict({"streams": [{"id": "a", "source": {"type": "file", "path": "a.mp4"}}]})
    >>> ClusterPipeline(cfg).cluster.streams_per_worker
    4

Like :class:`Pipeline`: ``add_stream``, ``remove_stream``, ``pause_stream``,
``resume_stream`` while it runs, ``results(events=True)``, ``run()`` (to the end of every
stream unless ``keep_alive``), ``stop()``, ``summary()``; ``status()`` is the placement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.app.cluster.connect import connect
from pipeline.app.cluster.control import ClusterControl
from pipeline.app.cluster.metrics import ClusterMetrics
from pipeline.app.cluster.worker import worker_config
from pipeline.app.cluster_options import ClusterConfig
from pipeline.app.config import PipelineConfig, StreamConfig, load_stream_config
from pipeline.app.outputs import check_outputs
from pipeline.core.errors import PipelineFinishedError, StreamExistsError
from pipeline.core.items import EndOfStream
from pipeline.core.ring import RingBuffer, RingClosed, RingEmpty
from pipeline.core.roster import Roster
from pipeline.core.stage import Bus
from pipeline.vision.result import Result
from sinks.base import Sink, SinkStage
from sinks.factory import build_sink

log = logging.getLogger("vidpipe.cluster")

PUT_S = 0.5
IMAGE_SINKS = ("video", "masks")  # sinks that draw on the frame: frames travel from the workers


class ClusterPipeline:
    """See the module docstring. ``address``: ``HOST:PORT`` of the Ray cluster's GCS, None
    for ``RAY_ADDRESS`` or a local one; ``sinks``: more sinks (e.g. a callback)."""

    def __init__(self, config: PipelineConfig, cluster: ClusterConfig | None = None, address: str | None = None,
                 sinks: Sequence[Sink] = ()) -> None:
        check_outputs(config)
        self.config, self.name, self.address = config, config.name, address
        self.cluster = cluster or config.cluster or ClusterConfig()
        self.sinks = [*(build_sink(s) for s in config.sinks), *sinks]
        self.bus = Bus()
        self.roster = Roster([], keep_alive=True)
        self.sink_stages = [SinkStage(s, self.bus, RingBuffer(config.rings.sink, "block" if s.lossless else "drop_oldest",
                                                              f"sink:{s.name}"), [], roster=self.roster) for s in self.sinks]
        self.outputs: list[RingBuffer] = [st.inp for st in self.sink_stages]
        self.control: ClusterControl | None = None
        self.open_streams: set[str] = set()
        self.cond = threading.Condition()
        self.stopping = False
        self._stopping_now = False  # stop() has begun (a second call returns)
        self._placed = False  # start() has placed the config's streams
        self.metrics = ClusterMetrics(self.status)
        self.metrics_port: int | None = None
        self.drain_timeout_s = 10.0  # (vidpipe serve's stop reads it; the workers stop at once)
        self.finished = False
        self.results_delivered = 0
        self.last_status: dict[str, Any] | None = None  # the placement when it stopped
        self._t0 = self._t1 = 0.0

    # -- lifetime -------------------------------------------------------------------------
    def start(self) -> None:
        """Open the sinks (an output refused fails before any worker starts), join the
        cluster, start the workers and the sinks, place the config's streams."""
        try:
            for stage in self.sink_stages:
                stage.sink.open()
            ray = connect(self.address)
            keep_images = any(s.type in IMAGE_SINKS for s in self.config.sinks)
            self.control = ClusterControl(ray, worker_config(self.config, self.cluster.num_cpus), self.cluster, self._deliver, self._end,
                                          keep_images, self.name)
            self.control.start()
            if self.config.metrics is not None:
                self.metrics_port = self.metrics.serve(self.config.metrics.port, self.config.metrics.host)
            for stage in self.sink_stages:
                stage.start()
            self._t0 = time.perf_counter()
            for stream in self.config.streams:
                self.add_stream(stream)
            self._placed = True
        except BaseException:
            self.stop()
            raise

    def run(self) -> dict[str, Any]:
        """Start, run to the end of every stream (with ``keep_alive``: until ``stop()``),
        stop; the summary."""
        if self.control is None:
            self.start()
        try:
            with self.cond:
                while not self.stopping and (self.open_streams or self.config.keep_alive):
                    self.cond.wait(0.2)
        finally:
            self.stop()
        return self.summary()

    @property
    def started(self) -> bool:
        """Its workers and sinks run, and the config's streams are placed."""
        return self._placed and not self.finished

    def abort(self) -> None:
        """As :meth:`stop` (results not yet delivered are made again by no one: nothing runs on)."""
        self.stop()

    def stop_requested(self) -> None:
        """From a signal handler: ``run()`` returns soon, stopping everything (never blocks)."""
        self.stopping = True

    def stop(self) -> None:
        """Stop the workers; streams not ended end ``stopped``; the sinks flush and close."""
        with self.cond:
            if self.finished or self._stopping_now:
                return
            self.stopping = self._stopping_now = True
            self.cond.notify_all()
        if self.control is not None:
            self.last_status = self.control.status()
            self.control.close()
        self.roster.close()
        for sid in sorted(self.open_streams):
            self._end(sid, "stopped", None)
        for stage in self.sink_stages:
            if stage.started_at:
                stage.join(30)
            else:
                stage.sink.close()
        for ring in self.outputs:
            ring.close()
        self.metrics.close()
        self._t1 = time.perf_counter()
        self.finished = True

    # -- streams --------------------------------------------------------------------------
    def add_stream(self, config: StreamConfig | dict[str, Any]) -> str:
        """Place a stream on the cluster; its id (see :meth:`ClusterControl.add_stream`)."""
        if self.control is None or self.stopping:
            raise PipelineFinishedError(f"pipeline {self.name} is not running: cannot add a stream")
        cfg = load_stream_config(config)
        with self.cond:
            if cfg.id in self.open_streams:
                raise StreamExistsError(f"cannot add stream {cfg.id!r}: pipeline {self.name} has a stream of that id")
        self.roster.add(cfg.id)
        for stage in self.sink_stages:
            stage.add_stream(cfg.id)
        with self.cond:
            self.open_streams.add(cfg.id)
        try:
            return self.control.add_stream(cfg.model_dump(mode="json"))
        except BaseException:
            self.roster.discard(cfg.id)
            with self.cond:
                self.open_streams.discard(cfg.id)
            raise

    def remove_stream(self, stream_id: str, drain: bool = True) -> dict[str, Any]:
        if self.control is None:
            raise PipelineFinishedError(f"pipeline {self.name} is not running: cannot remove a stream")
        return self.control.remove_stream(stream_id, drain)

    def pause_stream(self, stream_id: str) -> None:
        self._require().pause(stream_id, True)

    def resume_stream(self, stream_id: str) -> None:
        self._require().pause(stream_id, False)

    def pause(self) -> None:
        """Pause every stream (a paused file is not read; a live one reads and drops)."""
        self._require().pause(None, True)

    def resume(self) -> None:
        self._require().pause(None, False)

    def _require(self) -> ClusterControl:
        if self.control is None or self.stopping:
            raise PipelineFinishedError(f"pipeline {self.name} is not running")
        return self.control

    # -- delivery (on the control plane's poll thread) ------------------------------------
    def _deliver(self, result: Result) -> None:
        self.results_delivered += 1
        for ring in self.outputs:
            self._put(ring, result)

    def _end(self, stream_id: str, reason: str, error: str | None) -> None:
        with self.cond:
            if stream_id not in self.open_streams:
                return
            self.open_streams.discard(stream_id)
            self.cond.notify_all()
        if error:
            log.error("stream %s ended with an error on its worker: %s", stream_id, error)
        eos = EndOfStream(stream_id, reason)
        for ring in self.outputs:
            self._put(ring, eos)

    def _put(self, ring: RingBuffer, item: Any) -> None:
        """Into a sink's ring; a full lossless one holds delivery back (and so the workers)."""
        try:
            while not ring.put(item, timeout=PUT_S):
                if ring.closed:
                    return
        except RingClosed:
            pass

    def results(self, events: bool = False) -> Iterator[Result | EndOfStream]:
        """Results as they are delivered (each stream in order); with ``events`` each
        stream's end too. Starts the pipeline; stops it when the iteration ends."""
        ring: RingBuffer = RingBuffer(self.config.rings.sink, "block", "iterator")
        self.outputs = [*self.outputs, ring]
        if self.control is None:
            self.start()
        try:
            while True:
                try:
                    item = ring.get(timeout=0.1)
                except RingEmpty:
                    with self.cond:
                        if self.stopping or not (self.open_streams or self.config.keep_alive):
                            break
                    continue
                except RingClosed:
                    break
                if isinstance(item, EndOfStream) and not events:
                    continue
                yield item
        finally:
            self.stop()

    # -- reporting ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Workers, streams, totals and recent events (:meth:`ClusterControl.status`)."""
        if self.last_status is not None:
            return self.last_status
        return self.control.status() if self.control is not None else {"workers": {}, "streams": {}, "totals": {}, "events": []}

    def summary(self) -> dict[str, Any]:
        wall = (self._t1 or time.perf_counter()) - self._t0 if self._t0 else 0.0
        status = self.status()
        problems = [p for st in self.sink_stages if (p := st.problem())]
        return {"pipeline": self.name, "mode": "cluster", "results": self.results_delivered, "wall_s": round(wall, 2),
                "fps": round(self.results_delivered / wall, 2) if wall else 0.0, "streams": status["streams"],
                "workers": status["workers"], "events": status["events"], "errors": problems}
