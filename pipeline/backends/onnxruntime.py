"""ONNX Runtime inference backend.

ONNX Runtime silently falls back to the CPU when a requested execution provider cannot
load (and lists CUDA/TensorRT as "available" even without CUDA), so after creating the
session the providers actually in use are read back, compared with the request, and a
fallback is logged as a warning and reported in ``info()``.

Example:
    >>> from pipeline.zoo import default_model_path
    >>> backend = OnnxRuntimeBackend(default_model_path(), intra_op_threads=1)
    >>> backend.input_name, backend.active_providers
    ('images', ['CPUExecutionProvider'])
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ModelError

log = logging.getLogger("vidpipe.backend")

ProviderSpec = str | tuple[str, dict[str, Any]]


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the installed extra
        raise ModelError(
            "ONNX Runtime is not installed: pip install 'vidpipe[cpu]' (or 'vidpipe[gpu]' for CUDA)"
        ) from exc
    return ort


def parse_names(value: str | None) -> list[str] | None:
    """Class names from Ultralytics metadata text ``{0: 'person', 1: 'car'}`` or a list."""
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


class OnnxRuntimeBackend:
    """One ``InferenceSession``; ``run(blob)`` returns the model outputs as NumPy arrays."""

    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[ProviderSpec] = ("CPUExecutionProvider",),
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
    ) -> None:
        ort = _import_ort()
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = int(intra_op_threads)
        if inter_op_threads:
            options.inter_op_num_threads = int(inter_op_threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.requested_providers = [p if isinstance(p, str) else p[0] for p in providers]
        available = ort.get_available_providers()
        unknown = [p for p in self.requested_providers if p not in available]
        if unknown:
            log.warning("execution providers %s are not in this onnxruntime build (available: %s)", unknown, available)
        usable = [p for p in providers if (p if isinstance(p, str) else p[0]) in available] or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=list(usable))
        except Exception as exc:  # ORT raises its own types (InvalidProtobuf, Fail, ...)
            raise ModelError(f"cannot load {path} as an ONNX model: {str(exc).strip().splitlines()[0]}") from exc
        self.path = path
        self.active_providers: list[str] = list(self.session.get_providers())
        wanted = self.requested_providers[0] if self.requested_providers else "CPUExecutionProvider"
        self.fell_back = wanted not in self.active_providers
        if self.fell_back:
            log.warning(
                "ONNX Runtime fell back: requested %s, running on %s", self.requested_providers, self.active_providers
            )
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        if len(self.input_shape) != 4:
            raise ModelError(f"{path}: input {self.input_name!r} has shape {self.input_shape}, expected (B, 3, H, W)")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_shapes = [list(o.shape) for o in self.session.get_outputs()]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def fixed_batch(self) -> int | None:
        """The model's batch size when it is not dynamic (batches are padded to it)."""
        b = self.input_shape[0]
        return b if isinstance(b, int) and b > 0 else None

    @property
    def input_hw(self) -> tuple[int, int]:
        h, w = self.input_shape[2], self.input_shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return h, w
        imgsz = self.metadata.get("imgsz")
        if imgsz:
            size = ast.literal_eval(imgsz)
            size = [size, size] if isinstance(size, int) else list(size)
            return int(size[0]), int(size[1])
        return 640, 640

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: blob})

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "requested_providers": self.requested_providers,
            "active_providers": self.active_providers,
            "provider_fallback": self.fell_back,
        }
