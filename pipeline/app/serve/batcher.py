"""One model's request batcher: a bounded queue of images and the worker thread that runs them.

Requests for one model, from any number of connections, wait in one queue of at most
``queue_size`` images; a request that does not fit is refused at once (503) rather than
held in memory. The worker takes a batch the way the pipeline's
:class:`~pipeline.infer.stage.InferenceStage` does: up to ``max_batch_size`` images, sent
when full or ``max_wait_ms`` after its first image — but only while more images are on
their way: with nothing queued and no request still being read or decoded (``coming``), a
lone request runs at once instead of paying ``max_wait_ms`` for company that is not there.
The network runs once on the stacked
batch; each image is then decoded with ITS request's post-processing options (confidence,
IoU, class filter, ...), by a decoder built for those options and kept for the next
request that sends the same ones.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from pipeline.app.serve.errors import ServeError, overloaded
from pipeline.infer.config import BatchingConfig, PostprocessOptions
from pipeline.infer.model import Model
from pipeline.infer.tasks import OutputDecoder, decoder_for
from pipeline.vision.detections import Detections

log = logging.getLogger("vidpipe.serve")

POLL_S = 0.1  # how often an idle worker looks at its stop flag
COMING_POLL_S = 0.0005  # while filling a batch: how often to look whether more images are still coming
MAX_DECODERS = 64  # distinct option sets kept; more are rebuilt (a decoder is cheap to build)


@dataclass
class Job:
    """One image of a request, its decoder, and where its detections go."""

    image: np.ndarray
    decoder: OutputDecoder
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)
    model_s: float = 0.0  # the model's time on this image: its share of the batch's preprocess + run, and its decode


async def detections_of(jobs: Sequence[Job], model_id: str, timeout_s: float) -> list[Detections]:
    """The detections of a request's submitted images, awaited on the event loop; 503 (and
    the images cancelled where they have not run) when they take over ``timeout_s``."""
    try:
        return list(await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(j.future) for j in jobs)), timeout_s))
    except asyncio.TimeoutError:
        for j in jobs:
            j.future.cancel()
        raise overloaded(f"model {model_id}: no answer within {timeout_s} s") from None


class ModelWorker:
    """Batches the images sent to one model and runs them on its own thread."""

    def __init__(self, model_id: str, model: Model, batching: BatchingConfig, queue_size: int,
                 on_batch: Callable[[str, int], None] | None = None, coming: Callable[[], bool] | None = None) -> None:
        self.model_id, self.model = model_id, model
        limit = model.batch_limit
        self.max_batch_size = min(batching.max_batch_size, limit) if limit else batching.max_batch_size
        self.max_wait_s = batching.max_wait_ms / 1000.0
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=queue_size)
        self._submit_lock = threading.Lock()
        self._decoders: dict[str, OutputDecoder] = {}
        self._stop = threading.Event()
        self._on_batch = on_batch
        self._coming = coming or (lambda: True)  # unknown: wait the full max_wait_ms, as the pipeline does
        self.batches = 0
        self.images = 0
        self._thread = threading.Thread(target=self._loop, name=f"vidpipe:serve:{model_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking batches, join the thread, fail what still waits (503)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(overloaded(f"model {self.model_id} was unloaded before this image ran"))

    def decoder(self, options: PostprocessOptions) -> OutputDecoder:
        """The model's decoder for ``options`` (built once per distinct set); 422 for options the model cannot take."""
        key = options.model_dump_json()
        found = self._decoders.get(key)
        if found is not None:
            return found
        m = self.model
        try:
            built = decoder_for(m.layout, options, m.class_names, m.kernels, m.keypoint_names)
        except ValueError as exc:  # e.g. a class_filter naming classes the model does not have
            raise ServeError(422, f"model {self.model_id}: {exc}") from None
        if len(self._decoders) >= MAX_DECODERS:
            self._decoders.clear()
        self._decoders[key] = built
        return built

    def submit(self, images: Sequence[np.ndarray], options: PostprocessOptions) -> list[Job]:
        """Queue a request's images (all or none: 503 when they do not fit); a job per image,
        whose future gets its detections."""
        decoder = self.decoder(options)
        jobs = [Job(image, decoder) for image in images]
        with self._submit_lock:  # one request's images are queued together or not at all
            if self._stop.is_set():
                raise overloaded(f"model {self.model_id} is being unloaded")
            free = self.queue.maxsize - self.queue.qsize()
            if len(jobs) > free:
                raise overloaded(f"model {self.model_id} is overloaded: its queue of {self.queue.maxsize} images "
                                 f"has room for {free}, the request has {len(jobs)}; retry later")
            for job in jobs:
                self.queue.put_nowait(job)
        return jobs

    def _collect(self) -> list[Job]:
        """Up to max_batch_size jobs: the first waited for, the rest until max_wait_ms after it
        while more are coming."""
        try:
            jobs = [self.queue.get(timeout=POLL_S)]
        except queue.Empty:
            return []
        deadline = time.perf_counter() + self.max_wait_s
        while len(jobs) < self.max_batch_size:
            left = deadline - time.perf_counter()
            if left <= 0 or (self.queue.empty() and not self._coming()):
                try:
                    jobs.append(self.queue.get_nowait())
                    continue
                except queue.Empty:
                    break
            try:
                jobs.append(self.queue.get(timeout=min(left, COMING_POLL_S)))
            except queue.Empty:
                continue
        return [j for j in jobs if j.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while not self._stop.is_set():
            jobs = self._collect()
            if jobs:
                self._run(jobs)

    def _run(self, jobs: list[Job]) -> None:
        """One batch per input size (one in all unless images of several sizes meet under
        ``rect``); a failed batch answers its own requests, the others go on."""
        model = self.model
        batches = model.batches([j.image for j in jobs])
        while True:
            t0 = time.perf_counter()
            try:
                step = next(batches, None)
                if step is None:
                    return
                indices, blob, geoms = step
                outputs = model.run(blob)
            except Exception as exc:  # noqa: BLE001 - a failed batch answers its requests, the server goes on
                log.exception("model %s: a batch of %d failed", self.model_id, len(jobs))
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(ServeError(500, f"model {self.model_id}: inference failed: {exc}"))
                return
            self._answer([jobs[i] for i in indices], outputs, geoms, (time.perf_counter() - t0) / len(indices))

    def _answer(self, jobs: list[Job], outputs: list, geoms: list, share: float) -> None:
        """Each job's detections from its batch's ``outputs``; ``share``: its part of the batch's time."""
        self.batches += 1
        self.images += len(jobs)
        if self._on_batch is not None:
            self._on_batch(self.model_id, len(jobs))
        for i, (job, geom) in enumerate(zip(jobs, geoms)):
            t1 = time.perf_counter()
            try:
                dets: Detections = job.decoder.decode(outputs, i, geom, None, None)
                job.model_s = share + time.perf_counter() - t1
            except Exception as exc:  # noqa: BLE001 - one image's failure is that request's
                log.exception("model %s: post-processing failed", self.model_id)
                job.future.set_exception(ServeError(500, f"model {self.model_id}: post-processing failed: {exc}"))
            else:
                job.future.set_result(dets)
