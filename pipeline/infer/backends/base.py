"""The inference backend protocol, and opening the backend a model's options name.

A backend runs batches of letterboxed images (``(B, 3, H, W)`` float32) and reports what it
is: its input, its outputs, the providers asked for and in use, and the model metadata.
ONNX Runtime (CPU, CUDA, TensorRT providers) and native TensorRT implement it.

Example:
    >>> from pipeline.zoo import default_model_path
    >>> backend = open_backend(default_model_path(), ModelConfig(intra_op_threads=1))
    >>> backend.input_hw, backend.active_providers
    ((640, 640), ['CPUExecutionProvider'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.core.errors import ModelError
from pipeline.infer.config import ModelConfig


class Backend(Protocol):
    """What the model and the inference stage need of a backend."""

    path: Path
    metadata: dict[str, str]  # the ONNX custom metadata (Ultralytics: names, imgsz, task, ...)
    input_name: str
    input_dtype: np.dtype  # float32, or float16 for half-precision exports (Ultralytics half=True)
    output_shapes: list[list[Any]]  # declared; symbolic axes as str or None
    requested_providers: list[str]
    active_providers: list[str]
    fell_back: bool  # the first requested provider is not in use

    @property
    def fixed_batch(self) -> int | None:
        """The model's batch size when it is not dynamic (batches are padded to it)."""
        ...

    @property
    def input_hw(self) -> tuple[int, int]:
        """The input's height and width: fixed, or the largest it is fed where dynamic."""
        ...

    @property
    def dynamic_hw(self) -> bool:
        """Whether the backend runs inputs of any height and width (up to ``input_hw``)."""
        ...

    @property
    def rect_by_default(self) -> bool:
        """Whether inputs of many shapes cost nothing extra here (``model.rect``'s default)."""
        ...

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Outputs in host memory, float32 whatever the model's output type."""
        ...

    def run_on_device(self, blob: np.ndarray) -> list[Any]:
        """Outputs where the backend put them (GPU memory for GPU post-processing)."""
        ...

    def info(self) -> dict[str, Any]: ...


def open_backend(path: Path, config: ModelConfig, max_batch_size: int = 1) -> Backend:
    """The backend ``config.backend`` names, on the model file ``path``."""
    if config.backend == "tensorrt":
        from pipeline.infer.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(path, config, max_batch_size)
    if config.backend == "onnxruntime":
        from pipeline.infer.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, config, max_batch_size)
    raise ModelError(f"unknown backend {config.backend!r}: onnxruntime or tensorrt")  # pragma: no cover - validated
