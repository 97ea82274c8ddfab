"""A loaded model: backend + recognised layout + class names + pre/post-processing.

Everything that can be decided once is decided when the model loads: the backend, the
output layout and task (its :class:`~pipeline.infer.tasks.OutputDecoder`), CPU or CUDA
kernels, the class filter; then the kernels compile and the model runs once (warm-up),
so no frame pays for any of it.

Example:
    >>> import numpy as np
    >>> model = Model.load("shapes-yolov8seg", intra_op_threads=1)
    >>> model.layout.name, model.class_names
    ('yolov8-seg', ('circle', 'rectangle', 'triangle'))
    >>> [len(d) for d in model.infer([np.zeros((720, 1280, 3), np.uint8)])]
    [0]
"""

from __future__ import annotations

import ast
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from pipeline.core.errors import ModelError
from pipeline.infer.backends.base import Backend, open_backend
from pipeline.infer.backends.imgsz import DEFAULT_STRIDE, check_stride, model_stride
from pipeline.infer.config import ModelConfig
from pipeline.infer.kernels import select_kernels
from pipeline.infer.layouts import LayoutError, LayoutHints, ModelLayout, recognise
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.preprocess import Preprocessor
from pipeline.infer.tasks import OutputDecoder, StreamState, decoder_for
from pipeline.infer.tasks.keypoints import default_keypoint_names
from pipeline.vision import rle
from pipeline.vision.detections import Detections
from pipeline.zoo import resolve_model

log = logging.getLogger("vidpipe.model")


def read_names_file(path: Path) -> list[str]:
    """Class names from a side file: one per line (.txt/.names) or JSON/YAML list or map."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = "not found" if isinstance(exc, FileNotFoundError) else getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ModelError(f"class names file {path}: {why}") from None
    if path.suffix in (".json", ".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise ModelError(f"class names file {path}: not valid YAML/JSON{line}") from None
        if isinstance(data, dict) and "names" in data:
            data = data["names"]
        return _names_from_data(data, path)
    return [line.strip() for line in text.splitlines() if line.strip()]


def _names_from_data(data: object, path: Path) -> list[str]:
    """A list of names, or a map ``{0: name, 1: name}`` (Ultralytics' data.yaml form)."""
    if isinstance(data, list) and all(isinstance(v, (str, int, float)) for v in data):
        return [str(v) for v in data]
    if isinstance(data, dict):
        try:
            index = {int(k): v for k, v in data.items()}
        except (TypeError, ValueError):
            keys = ", ".join(repr(k) for k in list(data)[:3])
            raise ModelError(f"class names file {path}: a map's keys must be class indices 0..n-1 (found {keys})") from None
        if sorted(index) != list(range(len(index))):
            raise ModelError(f"class names file {path}: class indices must run 0..{len(index) - 1} without gaps")
        return [str(index[k]) for k in range(len(index))]
    raise ModelError(f"class names file {path}: expected a list of names or a map {{index: name}}, "
                     f"found {type(data).__name__}")


def parse_names(value: str | None) -> list[str] | None:
    """Class names from Ultralytics metadata text ``{0: 'person', 1: 'car'}`` or a list.

    >>> parse_names("{0: 'person', 1: 'car'}")
    ['person', 'car']
    """
    if not value:
        return None
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None
    if isinstance(parsed, dict):
        return [str(parsed[k]) for k in sorted(parsed)]
    if isinstance(parsed, (list, tuple)):
        return [str(v) for v in parsed]
    return None


def _literal(value: str | None) -> Any:
    """A metadata value (Ultralytics writes Python literals as text: ``True``, ``[17, 3]``)."""
    try:
        return ast.literal_eval(value) if value else None
    except (ValueError, SyntaxError):
        return value


def layout_hints(metadata: dict[str, str], config: ModelConfig, path: Path | str = "model") -> LayoutHints:
    """Task, end-to-end flag and keypoint shape from the metadata; ``model.kpt_shape`` wins."""
    args = _literal(metadata.get("args"))
    nms = isinstance(args, dict) and args.get("nms") is True  # exported with nms=True: final rows
    end2end = _literal(metadata.get("end2end")) is True or nms
    kpt = tuple(config.kpt_shape) if config.kpt_shape else _literal(metadata.get("kpt_shape"))
    if kpt is not None and not (isinstance(kpt, (list, tuple)) and len(kpt) == 2
                                and all(isinstance(v, int) for v in kpt) and kpt[0] >= 1 and kpt[1] in (2, 3)):
        raise ModelError(f"{path}: kpt_shape must be [keypoints, 2 or 3], got {kpt!r}")
    task = metadata.get("task")
    return LayoutHints(task.strip().lower() if task else None, end2end, (int(kpt[0]), int(kpt[1])) if kpt else None)


def keypoint_names(backend: Backend, config: ModelConfig, k: int) -> tuple[str, ...]:
    """A name per keypoint: ``model.keypoint_names`` (or ``keypoint_names_file``), the metadata's ``kpt_names`` (a list,
    or Ultralytics' ``{class: [names]}``), or COCO's for 17; none for other counts."""
    if not k:
        return ()
    names = config.keypoint_names
    source = "model.keypoint_names"
    if names is None and config.keypoint_names_file is not None:
        names, source = read_names_file(Path(config.keypoint_names_file)), f"keypoint names file {config.keypoint_names_file}"
    if names is None:
        meta = _literal(backend.metadata.get("kpt_names"))
        meta = next(iter(meta.values()), None) if isinstance(meta, dict) else meta
        names = [str(n) for n in meta] if isinstance(meta, (list, tuple)) else None
        source = "the model's kpt_names metadata"
    if names is None:
        return default_keypoint_names(k)
    if len(names) != k:
        raise ModelError(f"{backend.path}: {source} gives {len(names)} keypoint names, the model has {k} keypoints")
    return tuple(names)


def output_shapes(backend: Backend) -> list[list[Any]]:
    """Declared output shapes; where an exporter left non-batch axes symbolic, the shapes
    of one dummy inference instead."""
    shapes = backend.output_shapes
    if all(isinstance(d, int) for s in shapes for d in s[1:]):
        return shapes
    h, w = backend.input_hw
    dummy = np.zeros((backend.fixed_batch or 1, 3, h, w), np.float32)
    try:
        return [list(o.shape) for o in backend.run(dummy)]
    except Exception as exc:  # noqa: BLE001 - ORT raises its own types
        raise ModelError(f"{backend.path}: a test inference at {w}x{h} failed: {exc}") from exc


def check_imgsz(backend: Backend, config: ModelConfig, task: str) -> None:
    """``model.imgsz`` is the input the backend runs at: a fixed input of another size is
    an error at load, and so are sides off the stride where the metadata gives none (the
    backend checked the metadata's own before building anything)."""
    if config.imgsz is None:
        return
    if backend.input_hw != config.imgsz:
        (h, w), (ih, iw) = config.imgsz, backend.input_hw
        raise ModelError(f"{backend.path}: model.imgsz {w}x{h} needs an input of any height and width; the "
                         f"model's input is fixed at {iw}x{ih}")
    if model_stride(backend.metadata) is None and task != "classify":
        check_stride(config.imgsz, DEFAULT_STRIDE, backend.path)


class Model:
    """Runs batches of BGR images through the backend and decodes each image's outputs."""

    def __init__(self, backend: Backend, config: ModelConfig, names: Sequence[str] | None = None) -> None:
        self.backend, self.config, self.options = backend, config, config.postprocess
        names = list(names) if names else parse_names(backend.metadata.get("names"))
        shapes = output_shapes(backend)
        hints = layout_hints(backend.metadata, config, backend.path)
        try:
            self.layout: ModelLayout = recognise(shapes, len(names) if names else None, config.layout, hints)
        except LayoutError as exc:
            raise ModelError(f"{backend.path}: {self._names_mismatch(shapes, names, config, hints) or exc}") from exc
        check_imgsz(backend, config, self.layout.task)
        if names and self.layout.num_classes and len(names) != self.layout.num_classes:
            raise ModelError(f"{backend.path}: {len(names)} class names for {self.layout.num_classes} classes")
        self.class_names: tuple[str, ...] = tuple(names) if names else tuple(str(i) for i in range(self.layout.num_classes))
        self.keypoint_names = keypoint_names(backend, config, self.layout.num_keypoints)
        self.input_hw = backend.input_hw
        self.name = config.name or backend.path.stem
        self.kernels, self.postprocess_fallback = select_kernels(self.options.device, config.device_id)
        try:
            self.decoder: OutputDecoder = decoder_for(self.layout, self.options, self.class_names, self.kernels,
                                                      self.keypoint_names)
        except ValueError as exc:  # e.g. class_filter names the model does not have
            raise ModelError(f"model {backend.path}: {exc}") from exc
        rect_stride = self._rect(backend, config)
        self.rect = rect_stride is not None
        # Classification models see the frame's centre, scaled: as Ultralytics feeds them.
        self.preprocess = Preprocessor(self.input_hw, backend.fixed_batch, backend.input_dtype,
                                       center_crop=self.task == "classify", rect_stride=rect_stride)

    def _rect(self, backend: Backend, config: ModelConfig) -> int | None:
        """The stride each input side is a multiple of where frames go in at their own
        smallest input (``model.rect``), else None. By default: where the backend runs any
        shape at no extra cost and the metadata gives the stride (a guessed one could be
        wrong only for some frame sizes: an error mid-stream)."""
        stride = model_stride(backend.metadata)
        if self.task in ("classify", "semantic"):
            if config.rect:
                raise ModelError(f"{backend.path}: model.rect is for detection, segmentation and pose models "
                                 f"(this one is {self.task})")
            return None
        if config.rect is None:
            return stride if backend.rect_by_default and stride is not None else None
        if not config.rect:
            return None
        if not backend.dynamic_hw:
            h, w = self.input_hw
            why = "the TensorRT engine is built" if "TensorrtExecutionProvider" in backend.active_providers \
                or config.backend == "tensorrt" else "the model's input is fixed"
            raise ModelError(f"{backend.path}: model.rect needs an input of any height and width; {why} at {w}x{h}")
        if stride is None:
            log.warning("model %s: no stride in its metadata: input sides in multiples of %d", backend.path, DEFAULT_STRIDE)
        return stride or DEFAULT_STRIDE

    @property
    def task(self) -> str:
        """``detect``, ``segment``, ``pose``, ``classify`` or ``semantic`` (Ultralytics' names)."""
        return self.layout.task

    @staticmethod
    def _names_mismatch(shapes: list[list[Any]], names: list[str] | None, config: ModelConfig,
                        hints: LayoutHints) -> str | None:
        """Where the outputs fit a layout once the class names are left out: the names are wrong."""
        if not names:
            return None
        try:
            fitted = recognise(shapes, None, config.layout, hints)
        except LayoutError:
            return None
        source = f"names file {config.names_file}" if config.names_file else "the model's names metadata"
        return f"{source} gives {len(names)} class names, the outputs have {fitted.num_classes} classes ({fitted.name})"

    @classmethod
    def load(cls, model: str | Path | ModelConfig = "shapes-yolov8seg", *, warm_up: bool = True,
             max_batch_size: int = 1, **options: Any) -> Model:
        """Load a bundled model by name, an ONNX file, or a validated :class:`ModelConfig`.
        Keyword ``options`` are ModelConfig fields (``intra_op_threads=2``,
        ``providers=[...]``, ``backend="tensorrt"``, ``postprocess=PostprocessOptions(...)``),
        validated here. ``max_batch_size`` sizes GPU engines' dynamic-batch profiles."""
        if isinstance(model, ModelConfig):
            if options:
                raise TypeError("give the options in the ModelConfig or as keywords, not both")
            config = model
        else:
            try:
                config = ModelConfig(path=str(model), **options)
            except ValidationError as exc:
                raise ModelError(f"model options: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
        path = resolve_model(config.path)
        names = read_names_file(Path(config.names_file)) if config.names_file else None
        loaded = cls(open_backend(path, config, max_batch_size), config, names)
        if warm_up:
            loaded.warm_up()
        return loaded

    @property
    def postprocess_device(self) -> str:
        """Where post-processing runs: the kernels chosen at load (``cpu`` or ``cuda``)."""
        return self.kernels.device

    @property
    def batch_limit(self) -> int | None:
        return self.backend.fixed_batch

    def warm_up(self) -> None:
        """Compile the kernels and run the model once, so no frame pays for either."""
        t0 = time.perf_counter()
        self.kernels.warm_up()
        rle.warm_up()
        self.infer([np.zeros((self.input_hw[0], self.input_hw[1], 3), np.uint8)])
        if self.rect:  # and the input of 1280x720 video, the usual camera's
            self.infer([np.zeros((720, 1280, 3), np.uint8)])
        log.info("model %s warmed up in %.2f s", self.name, time.perf_counter() - t0)

    def run(self, blob: np.ndarray) -> list[Any]:
        """Raw outputs where the kernels read them: host arrays, or device arrays when
        post-processing runs on the GPU."""
        return self.kernels.outputs(self.backend, blob)

    def postprocess(self, outputs: Sequence[Any], i: int, letterbox: Letterbox,
                    state: StreamState | None = None) -> Detections:
        """Image ``i``'s detections; ``state``: its stream's memory across frames (see
        :class:`~pipeline.infer.tasks.StreamState`), None for none."""
        return self.decoder.decode(outputs, i, letterbox, None, state)

    def batches(self, images: Sequence[np.ndarray]) -> Iterator[tuple[list[int], np.ndarray, list[Letterbox]]]:
        """The blobs ``images`` go in as: one per input size (one in all without ``rect``),
        each with the indices of its images and their geometries. Each blob is a view of
        the preprocessor's buffer: run it before taking the next."""
        for indices in self.preprocess.groups(images):
            blob, geoms = self.preprocess([images[i] for i in indices])
            yield indices, blob, geoms

    def infer(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each BGR image (any sizes), in order."""
        found: dict[int, Detections] = {}
        for indices, blob, geoms in self.batches(images):
            outputs = self.run(blob)
            found.update((i, self.postprocess(outputs, k, g)) for k, (i, g) in enumerate(zip(indices, geoms)))
        return [found[i] for i in range(len(images))]

    def info(self) -> dict[str, Any]:
        return {
            "model": str(self.backend.path),
            "layout": self.layout.name,
            "task": self.decoder.task,
            "input_hw": list(self.input_hw),
            "rect": self.rect,
            "batch": self.batch_limit or "dynamic",
            "classes": list(self.class_names),
            "num_masks": self.layout.num_masks,
            **({"kpt_shape": [self.layout.num_keypoints, self.layout.keypoint_dims],
                "keypoint_names": list(self.keypoint_names)} if self.layout.num_keypoints else {}),
            "metadata": self.backend.metadata,
            **self.backend.info(),
            "postprocess_device": self.postprocess_device,
            **({"postprocess_fallback": self.postprocess_fallback} if self.postprocess_fallback else {}),
        }

    def describe(self) -> str:
        return json.dumps(self.info(), indent=2)
