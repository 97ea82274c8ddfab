"""Which models the server may load, and those it has loaded.

A model id is a NAME, never a path: a bundled model (``shapes-yolov8seg``), an ONNX file
under ``--models DIR`` (``DIR/<id>.onnx``; Roboflow's ``project/version`` ids map to
``DIR/project/version.onnx``), or an alias from the serve config (the operator's table, whose
targets may be any of these or a path). Ids are checked against a strict pattern and a file
found under the folder must resolve inside it, so ``../../etc/passwd`` is refused.

As on Roboflow's server, an inference request loads its model on first use;
``/model/add`` loads one ahead, ``/model/remove`` and ``/model/clear`` unload.

Example:
    >>> check_model_id("shapes/3")
    'shapes/3'
    >>> check_model_id("../../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.app.serve.errors.ServeError: model id '../../etc/passwd' is not a model name (...): ids are never paths
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.app.serve.batcher import ModelWorker
from pipeline.app.serve.config import ServeConfig
from pipeline.app.serve.errors import ServeError
from pipeline.core.errors import VidpipeError
from pipeline.infer.config import ModelConfig, PostprocessOptions
from pipeline.infer.model import Model
from pipeline.zoo import BUNDLED

log = logging.getLogger("vidpipe.serve")

_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
MODEL_ID = re.compile(rf"{_PART}(/{_PART})?")
#: Ultralytics' task names -> Roboflow's task types (what /model/registry reports).
TASK_TYPES = {"detect": "object-detection", "segment": "instance-segmentation", "pose": "keypoint-detection",
              "classify": "classification", "semantic": "semantic-segmentation"}


def check_model_id(model_id: str) -> str:
    """``model_id`` if it is a name (400 otherwise)."""
    if not MODEL_ID.fullmatch(model_id) or ".." in model_id:
        raise ServeError(400, f"model id {model_id!r} is not a model name (letters, digits, '-', '_', '.', at most one '/'): "
                              "ids are never paths")
    return model_id


class ModelRegistry:
    """Loaded models by id, each with its :class:`ModelWorker`; loads are serialised."""

    def __init__(self, config: ServeConfig, on_batch: Callable[[str, int], None] | None = None,
                 coming: Callable[[], bool] | None = None) -> None:
        self.config = config
        self.models_dir = config.models_dir.resolve() if config.models_dir else None
        self.workers: dict[str, ModelWorker] = {}
        self._lock = threading.Lock()
        self._on_batch = on_batch
        self._coming = coming

    def resolve(self, model_id: str) -> str | Path:
        """The bundled name or file an id stands for (404 if none)."""
        target = self.config.aliases.get(model_id)
        if target is not None:  # the operator's table: trusted
            return target if target in BUNDLED else Path(target).expanduser()
        check_model_id(model_id)
        if model_id in BUNDLED:
            return model_id
        if self.models_dir is not None:
            name = model_id if model_id.endswith(".onnx") else f"{model_id}.onnx"
            path = (self.models_dir / name).resolve()
            if path.is_relative_to(self.models_dir) and path.is_file():
                return path
        known = self.available()
        more = f" and {len(known) - 20} more" if len(known) > 20 else ""
        raise ServeError(404, f"no model {model_id!r} here: serve one of {', '.join(known[:20])}{more}")

    def available(self) -> list[str]:
        """Ids that can be loaded: aliases, bundled names, files under the models folder."""
        ids = [*self.config.aliases, *BUNDLED]
        if self.models_dir is not None:
            ids += sorted(str(p.relative_to(self.models_dir).with_suffix("")) for p in self.models_dir.rglob("*.onnx"))
        return list(dict.fromkeys(ids))

    def get(self, model_id: str) -> ModelWorker:
        """The loaded model's worker, loading it first if needed (blocking: call from a worker thread)."""
        worker = self.workers.get(model_id)
        return worker if worker is not None else self.add(model_id)

    def add(self, model_id: str) -> ModelWorker:
        """Load ``model_id`` (once; a second add returns the loaded one)."""
        with self._lock:
            worker = self.workers.get(model_id)
            if worker is not None:
                return worker
            target = self.resolve(model_id)
            config = ModelConfig(path=str(target), name=model_id, **self.config.backend.model_dump(),
                                 postprocess=PostprocessOptions(device=self.config.postprocess_device))
            try:
                model = Model.load(config, max_batch_size=self.config.batching.max_batch_size)
            except VidpipeError as exc:
                raise ServeError(400, f"model {model_id!r} could not be loaded: {exc}") from None
            worker = ModelWorker(model_id, model, self.config.batching, self.config.limits.queue_size, self._on_batch,
                                 self._coming)
            worker.start()
            self.workers[model_id] = worker
            log.info("loaded model %s (%s, %s)", model_id, target, model.task)
            return worker

    def remove(self, model_id: str) -> None:
        """Unload ``model_id`` (404 if not loaded); its waiting images answer 503."""
        with self._lock:
            worker = self.workers.pop(model_id, None)
        if worker is None:
            raise ServeError(404, f"model {model_id!r} is not loaded")
        worker.stop()

    def clear(self) -> None:
        """Unload every model."""
        with self._lock:
            workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            worker.stop()

    def describe(self) -> dict[str, Any]:
        """``/model/registry``'s answer: Roboflow's ``{"models": [{model_id, task_type, ...}]}``."""
        models = []
        for model_id, worker in list(self.workers.items()):
            m = worker.model
            models.append({"model_id": model_id, "task_type": TASK_TYPES.get(m.task, m.task),
                           "batch_size": worker.max_batch_size, "input_height": m.input_hw[0], "input_width": m.input_hw[1],
                           "classes": list(m.class_names)})
        return {"models": models}
