"""A loaded model: backend + recognised layout + class names + pre/post-processing.

Example:
    >>> import numpy as np
    >>> from pipeline.zoo import default_model_path
    >>> model = Model.load(default_model_path(), intra_op_threads=1)
    >>> model.layout.name, model.class_names
    ('yolov8-seg', ('circle', 'rectangle', 'triangle'))
    >>> [len(d) for d in model.infer([np.zeros((720, 1280, 3), np.uint8)])]
    [0]
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ModelError
from pipeline.infer.backends.onnxruntime import GpuSettings, OnnxRuntimeBackend, parse_names
from pipeline.infer.kernels import cpu as kernels
from pipeline.infer.kernels import cuda as kernels_cuda
from pipeline.infer.layouts import LayoutError, ModelLayout, recognise
from pipeline.infer.letterbox import Letterbox, letterbox_into, to_blob
from pipeline.infer.postprocess import PostprocessOptions, PostprocessTimings, allowed_classes, postprocess_segmentation
from pipeline.vision import geometry, rle
from pipeline.vision.detections import Detections

log = logging.getLogger("vidpipe.model")


def read_names_file(path: Path) -> list[str]:
    """Class names from a side file: one per line (.txt/.names) or JSON/YAML list or map."""
    text = path.read_text()
    if path.suffix in (".json", ".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
        if isinstance(data, dict) and "names" in data:
            data = data["names"]
        if isinstance(data, dict):
            return [str(data[k]) for k in sorted(data)]
        return [str(v) for v in data]
    return [line.strip() for line in text.splitlines() if line.strip()]


class Model:
    """Runs batches of BGR images through the backend and post-processes each image."""

    def __init__(
        self,
        backend: OnnxRuntimeBackend,
        options: PostprocessOptions | None = None,
        names: Sequence[str] | None = None,
        layout: str | None = None,
        name: str | None = None,
    ) -> None:
        self.backend = backend
        self.options = options or PostprocessOptions()
        meta_names = parse_names(backend.metadata.get("names"))
        names = list(names) if names else meta_names
        try:
            self.layout: ModelLayout = recognise(self._output_shapes(backend), len(names) if names else None, layout)
        except LayoutError as exc:
            raise ModelError(f"{backend.path}: {exc}") from exc
        if names and len(names) != self.layout.num_classes:
            raise ModelError(f"{backend.path}: {len(names)} class names for {self.layout.num_classes} classes")
        self.class_names: tuple[str, ...] = tuple(names) if names else tuple(str(i) for i in range(self.layout.num_classes))
        self.input_hw = backend.input_hw
        self.name = name or backend.path.stem
        self.allowed = allowed_classes(self.options.class_filter, self.class_names, self.layout.num_classes)
        self.device_id = getattr(getattr(backend, "gpu", None), "device_id", 0)
        self.postprocess_device = "cpu"
        self.postprocess_fallback: str | None = None
        if self.options.device == "cuda":
            if kernels_cuda.available():
                self.postprocess_device = "cuda"
                with kernels_cuda.on_device(self.device_id):  # the class filter, uploaded once
                    self._allowed_on_device = kernels_cuda.to_device(self.allowed)
            else:  # asked for, impossible here: say so once, carry on on the CPU
                self.postprocess_fallback = kernels_cuda.unavailable_reason()
                log.warning("GPU post-processing asked for, but %s: post-processing on the CPU", self.postprocess_fallback)
        self._geometry: dict[tuple[int, int], Letterbox] = {}
        self._canvas: np.ndarray | None = None
        self._blob: np.ndarray | None = None
        self.last_timings = PostprocessTimings()

    @staticmethod
    def _output_shapes(backend: OnnxRuntimeBackend) -> list[list]:
        """Declared output shapes; where an exporter left non-batch axes symbolic, the
        shapes of one dummy inference instead."""
        shapes = backend.output_shapes
        if all(isinstance(d, int) for s in shapes for d in s[1:]):
            return shapes
        h, w = backend.input_hw
        dummy = np.zeros((backend.fixed_batch or 1, 3, h, w), np.float32)
        try:
            return [list(o.shape) for o in backend.run(dummy)]
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types
            raise ModelError(f"{backend.path}: a test inference at {w}x{h} failed: {exc}") from exc

    @classmethod
    def load(
        cls,
        path: str | Path,
        providers: Sequence[Any] = ("CPUExecutionProvider",),
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        options: PostprocessOptions | None = None,
        names_file: str | Path | None = None,
        layout: str | None = None,
        warm_up: bool = True,
        backend: str = "onnxruntime",
        gpu: GpuSettings | None = None,
        io_binding: bool | None = None,
    ) -> Model:
        """Load ``path`` with ONNX Runtime (``providers``: CPU, CUDA, TensorRT) or the
        native TensorRT backend (``backend="tensorrt"``, extra ``[trt]``)."""
        if backend == "tensorrt":
            from pipeline.infer.backends.tensorrt import TensorRTBackend

            runtime: Any = TensorRTBackend(path, gpu)
        elif backend == "onnxruntime":
            runtime = OnnxRuntimeBackend(path, providers, intra_op_threads, inter_op_threads, gpu, io_binding)
        else:
            raise ModelError(f"unknown backend {backend!r}: onnxruntime or tensorrt")
        names = read_names_file(Path(names_file)) if names_file else None
        model = cls(runtime, options, names, layout)
        if warm_up:
            model.warm_up()
        return model

    @property
    def batch_limit(self) -> int | None:
        return self.backend.fixed_batch

    def geometry(self, source_hw: tuple[int, int]) -> Letterbox:
        g = self._geometry.get(source_hw)
        if g is None:
            g = self._geometry[source_hw] = Letterbox.fit(source_hw, self.input_hw)
        return g

    def warm_up(self) -> None:
        """Compile the Numba kernels and run the model once, so no frame pays for either."""
        t0 = time.perf_counter()
        kernels.warm_up()
        rle.warm_up()
        geometry.warm_up()
        if self.postprocess_device == "cuda":
            kernels_cuda.warm_up()
        self.infer([np.zeros((self.input_hw[0], self.input_hw[1], 3), np.uint8)])
        log.info("model %s warmed up in %.2f s", self.name, time.perf_counter() - t0)

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        n = len(images)
        batch = self.batch_limit or n
        if n > batch:
            raise ValueError(f"{n} images for a model with fixed batch size {batch}")
        ih, iw = self.input_hw
        if self._canvas is None or self._canvas.shape[0] < batch:
            self._canvas = np.full((batch, ih, iw, 3), 114, np.uint8)
            self._blob = np.empty((batch, 3, ih, iw), np.float32)
        geoms = []
        for i, img in enumerate(images):
            g = self.geometry((img.shape[0], img.shape[1]))
            letterbox_into(img, self._canvas[i], g)
            geoms.append(g)
        blob = to_blob(self._canvas[:batch], self._blob[:batch])
        return blob, geoms

    def run(self, blob: np.ndarray) -> list[Any]:
        """Raw outputs: host arrays, or device arrays when post-processing runs on the GPU
        (left where the backend put them; host outputs are uploaded)."""
        if self.postprocess_device == "cuda":
            with kernels_cuda.on_device(self.device_id):
                return [kernels_cuda.to_device(o) for o in self.backend.run_on_device(blob)]
        return self.backend.run(blob)

    def postprocess(self, outputs: list[Any], i: int, geometry: Letterbox) -> Detections:
        o, lay = self.options, self.layout
        on_gpu = self.postprocess_device == "cuda"
        with kernels_cuda.on_device(self.device_id) if on_gpu else contextlib.nullcontext():
            protos = outputs[lay.protos_output][i] if lay.protos_output is not None else None
            return postprocess_segmentation(
                outputs[lay.detections_output][i], protos, lay.name,
                self.input_hw, (geometry.src_h, geometry.src_w),
                confidence=o.confidence, iou_threshold=o.iou_threshold, class_agnostic_nms=o.class_agnostic_nms,
                max_detections=o.max_detections, max_candidates=o.max_candidates, class_names=self.class_names,
                mask_decode_mode=o.mask_decode_mode, tradeoff_factor=o.tradeoff_factor,
                max_area_ratio=o.max_area_ratio, letterbox=geometry, allowed=self._allowed_on_device if on_gpu else self.allowed,
                timings=self.last_timings, device=self.postprocess_device,
            )

    def infer(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each BGR image (any sizes), in order."""
        blob, geoms = self.preprocess(images)
        outputs = self.run(blob)
        return [self.postprocess(outputs, i, g) for i, g in enumerate(geoms)]

    def info(self) -> dict[str, Any]:
        return {
            "model": str(self.backend.path),
            "layout": self.layout.name,
            "input_hw": list(self.input_hw),
            "batch": self.batch_limit or "dynamic",
            "classes": list(self.class_names),
            "num_masks": self.layout.num_masks,
            "metadata": self.backend.metadata,
            **self.backend.info(),
            "postprocess_device": self.postprocess_device,
            **({"postprocess_fallback": self.postprocess_fallback} if self.postprocess_fallback else {}),
        }

    def describe(self) -> str:
        return json.dumps(self.info(), indent=2)
