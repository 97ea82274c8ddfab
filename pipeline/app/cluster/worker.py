"""A cluster worker: one Ray actor owning one keep-alive :class:`Pipeline`.

The worker loads the model once (its batcher shares it between every stream placed here,
so cross-stream batching still happens), then runs with no streams until the control
plane adds some. Its results do not go to sinks here: a thread iterates
``Pipeline.results(events=True)`` into an *outbox*, and the control plane takes them
(:meth:`PipelineWorker.take`), delivers them to the pipeline's sinks and only then counts
them as delivered (:mod:`pipeline.app.cluster.delivery`). A result in the outbox of a
worker that dies was never delivered, so it is made again where its stream moves.

The outbox is bounded: when the control plane falls behind, the iterating thread waits,
the pipeline's iterator ring fills and back-pressure reaches the sources (lossless).

A file stream re-placed after a failure is added with ``resume_after``: it seeks to the
next frame (``start_frame``), and results at or before that frame are never put in the
outbox (a variable-rate file, which cannot seek by frame, is read from its start).

``take`` doubles as the heartbeat: it answers within ``wait_s`` even with nothing to give.
The class is plain Python (tested without Ray); :func:`pipeline.app.cluster.control`
wraps it with ``ray.remote`` and the worker's resources.

Example (in-process, no Ray)::

    w = PipelineWorker({"model": {"path": "yolo11n-seg-shapes"}})
    w.add({"id": "a", "source": {"type": "file", "path": "clip.mp4"}})
    items = w.take(100, 1.0)        # [("result", Result), ..., ("end", "a", "eos", None)]
    w.close()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from typing import Any

from pipeline.app.cluster.published import RenumberedSink, worker_publisher
from pipeline.app.config import PipelineConfig, load_config_dict, load_stream_config
from pipeline.app.pipeline import Pipeline
from pipeline.core.errors import SourceError, VidpipeError
from pipeline.core.items import EndOfStream
from pipeline.infer.model import Model
from pipeline.vision.result import Result
from sources.factory import build_source

log = logging.getLogger("vidpipe.cluster")

OUTBOX_MAX = 256  # results waiting for the control plane before the pipeline is held back
END_REASONS_FINAL = ("eos", "error")  # a stream that ended so is done; "removed"/"stopped": the control plane decides

Item = tuple[Any, ...]  # ("result", Result) | ("end", stream id, reason, error text or None)


def worker_config(config: PipelineConfig | dict[str, Any], num_cpus: float | None = None) -> dict[str, Any]:
    """What a worker builds its pipeline from: the pipeline's config without its streams
    (placed one by one) and sinks (they run in the control plane), kept alive.

    ``num_cpus`` (the CPUs each worker reserves): where the model's ``intra_op_threads`` is
    unset, ONNX Runtime gets that many threads (at least 1), as Ray sets OMP_NUM_THREADS for
    its own tasks: left to itself it takes every core of the node, so the workers of one
    node would overrun each other and starve Ray's own processes (missed node heartbeats).

    >>> worker_config({"model": {"path": "m.onnx"}, "streams": []}, num_cpus=0.5)["model"]
    {'path': 'm.onnx', 'intra_op_threads': 1}
    """
    data = config.model_dump(mode="json") if isinstance(config, PipelineConfig) else dict(config)
    out = {**{k: v for k, v in data.items() if k not in ("streams", "sinks", "metrics")}, "keep_alive": True}
    model = dict(out.get("model") or {})
    if num_cpus is not None and not model.get("intra_op_threads"):
        out["model"] = {**model, "intra_op_threads": max(1, int(num_cpus))}
    return out


def _advertised(host: str) -> str:
    """The address subscribers reach this worker's publisher at: the node's own for a
    wildcard bind (Ray knows it), else the one bound."""
    if host not in ("0.0.0.0", "*", "::"):
        return host
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:  # noqa: BLE001 - not under Ray
        return socket.gethostbyname(socket.gethostname())


class PipelineWorker:
    """One pipeline in one process (see the module docstring). Never raises from
    ``__init__``: a model that cannot load is reported by :meth:`ready`."""

    def __init__(self, config: dict[str, Any], keep_images: bool = False, outbox_max: int = OUTBOX_MAX,
                 publish_host: str | None = None) -> None:
        """``publish_host``: also publish results on ZeroMQ, bound to a free port of that
        address (:mod:`pipeline.app.cluster.published`); ``ready()`` announces the endpoint."""
        self.keep_images, self.outbox_max = keep_images, outbox_max
        self.publisher: RenumberedSink | None = None
        self.endpoint: str | None = None
        self.error: str | None = None
        self.pipeline: Pipeline | None = None
        self.outbox: deque[Item] = deque()
        self.cond = threading.Condition()
        self.resume_after: dict[str, int] = {}  # file streams resumed: results at or before this index are not sent
        self.started = time.time()
        try:
            self.pipeline = self._build(load_config_dict(worker_config(config), "worker config"), publish_host)
        except VidpipeError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - anything at all: reported by ready(), the actor stays up to say it
            self.error = f"{type(exc).__name__}: {exc}"
        self.thread = threading.Thread(target=self._run, name="vidpipe:cluster-worker", daemon=True)
        if self.pipeline is not None:
            self.thread.start()

    def _build(self, cfg: PipelineConfig, publish_host: str | None) -> Pipeline:
        """The pipeline (model loaded once), with the worker's publisher when asked for."""
        if publish_host is None:
            return Pipeline.from_config(cfg)
        self.publisher, self.endpoint = worker_publisher(publish_host, _advertised(publish_host))
        model = Model.load(cfg.model, max_batch_size=cfg.batching.max_batch_size)
        return Pipeline([], model, [self.publisher], batching=cfg.batching, tracker=cfg.tracker, rings=cfg.rings,
                        decoder_threads=cfg.decoder_threads, name=cfg.name, keep_alive=True, config=cfg)

    def ready(self) -> dict[str, Any]:
        """Where it runs and what it loaded; ``error`` when the pipeline could not be built."""
        info: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "error": self.error,
                                "publisher": self.endpoint}
        if self.pipeline is not None:
            info["model"] = self.pipeline.model.name
        info["node"] = None  # not in a Ray worker (tests, in-process use)
        try:
            import ray

            if ray.is_initialized():  # else get_runtime_context() would start a local Ray
                info["node"] = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - Ray absent or not answering: no node to name
            pass
        return info

    # -- results --------------------------------------------------------------------------
    def _run(self) -> None:
        assert self.pipeline is not None
        try:
            for item in self.pipeline.results(events=True):
                self._put(self._item(item))
        except Exception as exc:  # noqa: BLE001 - a shared stage failed: every stream of this worker ends
            self.error = f"pipeline failed: {exc}"
            log.error("cluster worker: %s", self.error)
        finally:
            with self.cond:
                self.cond.notify_all()

    def _item(self, item: Result | EndOfStream) -> Item | None:
        if isinstance(item, EndOfStream):
            self.resume_after.pop(item.stream_id, None)
            return ("end", item.stream_id, item.reason, None if item.error is None else str(item.error))
        if item.frame_index <= self.resume_after.get(item.stream_id, -1):
            return None  # delivered before the failure (a file read from its start)
        if not self.keep_images:
            item.image = None  # frames travel only when a sink draws on them
        return ("result", item)

    def _put(self, item: Item | None) -> None:
        if item is None:
            return
        with self.cond:
            while len(self.outbox) >= self.outbox_max and self.error is None:
                self.cond.wait(0.5)
            self.outbox.append(item)
            self.cond.notify_all()

    def take(self, max_items: int = 512, wait_s: float = 0.2) -> list[Item]:
        """What the outbox holds (up to ``max_items``), waiting up to ``wait_s`` for one."""
        with self.cond:
            if not self.outbox and self.error is not None and not self.thread.is_alive():
                # Its pipeline failed (a shared stage): the control plane treats it as lost.
                raise RuntimeError(f"worker pipeline is gone: {self.error}")
            if not self.outbox:
                self.cond.wait(wait_s)
            items = [self.outbox.popleft() for _ in range(min(max_items, len(self.outbox)))]
            self.cond.notify_all()
        return items

    # -- streams --------------------------------------------------------------------------
    def add(self, stream: dict[str, Any], resume_after: int | None = None, index_offset: int = 0) -> str:
        """Add a stream (a ``streams:`` entry); ``resume_after``: a file stream's last
        delivered frame, it goes on from the next; ``index_offset``: a moved live stream's
        (for the publisher; the control plane renumbers its own). Returns ``added`` or
        ``ended`` (nothing after that frame: its end is in the outbox)."""
        if self.pipeline is None:
            raise VidpipeError(f"worker has no pipeline: {self.error}")
        cfg = load_stream_config(stream)
        if self.publisher is not None:
            self.publisher.renumber(cfg.id, index_offset, -1 if resume_after is None else resume_after)
        if resume_after is None or resume_after < 0 or cfg.source.type != "file":
            self.pipeline.add_stream(cfg)
            return "added"
        self.resume_after[cfg.id] = resume_after
        seek = cfg.model_copy(update={"source": cfg.source.model_copy(update={"start_frame": resume_after + 1})})
        try:
            self.pipeline.add_stream(seek)
        except SourceError:  # past its end, or a variable-rate file: see which
            whole = build_source(cfg.id, cfg.source)
            whole.open()
            frames = whole.expected_frames()
            whole.close()
            if frames is not None and resume_after + 1 >= frames:
                self.resume_after.pop(cfg.id, None)
                self._put(("end", cfg.id, "eos", None))
                return "ended"
            self.pipeline.add_stream(cfg)  # read from the start; _item drops what was delivered
        return "added"

    def remove(self, stream_id: str, drain: bool = False) -> dict[str, Any] | None:
        """Remove a stream; its final summary (its end follows in the outbox)."""
        if self.pipeline is None:
            return None
        return self.pipeline.remove_stream(stream_id, drain=drain)

    def forget(self, stream_id: str) -> None:
        """Release a stream that ended by itself (its slot is free again); quiet if gone."""
        if self.pipeline is not None and stream_id in self.pipeline.control.parts:
            try:
                self.pipeline.remove_stream(stream_id, drain=False)
            except VidpipeError as exc:
                log.debug("forgetting stream %s: %s", stream_id, exc)

    def pause(self, stream_id: str, paused: bool) -> None:
        if self.pipeline is not None:
            (self.pipeline.pause_stream if paused else self.pipeline.resume_stream)(stream_id)

    def progress(self) -> dict[str, Any]:
        """Per stream: state, frames, results, latency percentiles; the outbox's length."""
        if self.pipeline is None:
            return {"streams": {}, "outbox": 0, "error": self.error}
        p = self.pipeline
        latency = p.metrics.latency_summary()
        streams = {sid: {**st.summary(), "latency_ms": latency.get(sid, {})} for sid, st in dict(p.streams).items()}
        return {"streams": streams, "outbox": len(self.outbox), "error": self.error}

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the pipeline (its streams end ``stopped``) and join the results thread."""
        if self.pipeline is None:
            return
        if not self.pipeline.finished:
            self.pipeline.stop()
        deadline = time.monotonic() + timeout_s
        while self.thread.is_alive() and time.monotonic() < deadline:
            with self.cond:
                self.outbox.clear()  # nobody takes them any more: let the iterator finish
                self.cond.notify_all()
            self.thread.join(0.1)
