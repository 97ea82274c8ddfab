"""ONNX Runtime inference backend.

ONNX Runtime silently falls back to the CPU when a requested execution provider cannot
load (and lists CUDA/TensorRT as "available" even without CUDA), so after creating the
session the providers actually in use are read back, compared with the request, and a
fallback is logged as a warning and reported in ``info()``.

GPU settings (:class:`BackendOptions`: device id, FP16, TensorRT engine cache directory and
workspace; the dynamic-batch profile up to ``max_batch_size``) become the CUDA and TensorRT providers' options; a
provider's own options given in the config win over them. With I/O binding the input is
bound once per run and the outputs are bound on the provider's device, so GPU
post-processing can read them where they are (``run_on_device``); on the CPU provider the
same binding path runs too, into host memory.

Example:
    >>> from pipeline.zoo import default_model_path
    >>> backend = OnnxRuntimeBackend(default_model_path(), BackendOptions(intra_op_threads=1))
    >>> backend.input_name, backend.active_providers
    ('images', ['CPUExecutionProvider'])
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ModelError
from pipeline.infer.backends.imgsz import resolve_input_hw
from pipeline.infer.config import BackendOptions, ProviderSpec

log = logging.getLogger("vidpipe.backend")

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "vidpipe" / "engines"


def provider_options(providers: Sequence[ProviderSpec], gpu: BackendOptions, max_batch_size: int = 1,
                     input_name: str = "images", input_hw: tuple[int, int] = (640, 640),
                     dynamic_batch: bool = True) -> list[ProviderSpec]:
    """Each provider with its options filled from ``gpu``; options set explicitly win.
    ``max_batch_size`` is the dynamic-batch profile's optimum and maximum.

    >>> provider_options(["CUDAExecutionProvider", "CPUExecutionProvider"], BackendOptions(device_id=1))
    [('CUDAExecutionProvider', {'device_id': 1, 'arena_extend_strategy': 'kSameAsRequested'}), 'CPUExecutionProvider']
    """
    out: list[ProviderSpec] = []
    h, w = input_hw
    cache = gpu.engine_cache_dir or default_cache_dir()
    for p in providers:
        name, given = _provider_name(p), ({} if isinstance(p, str) else dict(p[1]))
        if name == "CUDAExecutionProvider":
            base: dict[str, Any] = {"device_id": gpu.device_id, "arena_extend_strategy": "kSameAsRequested"}
        elif name == "TensorrtExecutionProvider":
            base = {"device_id": gpu.device_id, "trt_fp16_enable": gpu.fp16, "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": str(cache), "trt_max_workspace_size": int(gpu.workspace_gb * 2**30)}
            if dynamic_batch:  # one engine for every batch size up to the pipeline's
                base["trt_profile_min_shapes"] = f"{input_name}:1x3x{h}x{w}"
                base["trt_profile_opt_shapes"] = f"{input_name}:{max_batch_size}x3x{h}x{w}"
                base["trt_profile_max_shapes"] = f"{input_name}:{max_batch_size}x3x{h}x{w}"
        else:
            out.append(p)
            continue
        out.append((name, {**base, **given}))
    return out


def _provider_name(p: ProviderSpec) -> str:
    return p if isinstance(p, str) else p[0]


def _onnx_input(path: Path, options: BackendOptions) -> tuple[str, tuple[int, int], bool]:
    """Input name, size and whether the batch is dynamic, from a throwaway CPU session: the
    TensorRT provider's options must name them before the real session exists."""
    ort = _import_ort()
    probe = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    i = probe.get_inputs()[0]
    shape = list(i.shape)
    hw = resolve_input_hw(shape, probe.get_modelmeta().custom_metadata_map, options, path)
    return i.name, hw, not (isinstance(shape[0], int) and shape[0] > 0)


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the installed extra
        raise ModelError(
            "ONNX Runtime is not installed: pip install 'vidpipe[cpu]' (or 'vidpipe[gpu]' for CUDA)"
        ) from exc
    return ort


class OnnxRuntimeBackend:
    """One ``InferenceSession``; ``run(blob)`` returns the model outputs as NumPy arrays."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, options: BackendOptions | None = None, max_batch_size: int = 1) -> None:
        path = Path(path)
        if path.is_dir():
            raise ModelError(f"model path is a folder, not an ONNX file: {path}")
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        self.path = path
        self.options = options or BackendOptions()
        self.max_batch_size = max_batch_size
        self.requested_providers = [_provider_name(p) for p in self.options.providers]
        self.session = self._session(path)
        self.active_providers: list[str] = list(self.session.get_providers())
        wanted = self.requested_providers[0] if self.requested_providers else "CPUExecutionProvider"
        self.fell_back = wanted not in self.active_providers
        if self.fell_back:
            log.warning(
                "ONNX Runtime fell back: requested %s, running on %s", self.requested_providers, self.active_providers
            )
        self._read_io(path)
        # Where outputs live: the first GPU provider in use binds them on its device.
        self.device = "cuda" if any(p in GPU_PROVIDERS for p in self.active_providers) else "cpu"
        self.io_binding = self.device == "cuda" if self.options.io_binding is None else bool(self.options.io_binding)
        self._binding = self.session.io_binding() if self.io_binding else None

    def _session(self, path: Path) -> Any:
        """The InferenceSession on the usable providers (with their GPU options)."""
        ort = _import_ort()
        options = ort.SessionOptions()
        if self.options.intra_op_threads:
            options.intra_op_num_threads = int(self.options.intra_op_threads)
        if self.options.inter_op_threads:
            options.inter_op_num_threads = int(self.options.inter_op_threads)
        if self.options.allow_spinning is not None:
            spin = "1" if self.options.allow_spinning else "0"
            options.add_session_config_entry("session.intra_op.allow_spinning", spin)
            options.add_session_config_entry("session.inter_op.allow_spinning", spin)  # its parallel mode only
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        unknown = [p for p in self.requested_providers if p not in available]
        if unknown:
            log.warning("execution providers %s are not in this onnxruntime build (available: %s)", unknown, available)
        usable = [p for p in self.options.providers if _provider_name(p) in available] or ["CPUExecutionProvider"]
        if any(_provider_name(p) in GPU_PROVIDERS for p in usable):
            usable = self._gpu_options(path, usable)
        try:
            # onnxruntime-gpu print()s its provider fallback banner: keep it off our stdout (JSON there)
            with contextlib.redirect_stdout(sys.stderr):
                return ort.InferenceSession(str(path), sess_options=options, providers=list(usable))
        except Exception as exc:  # ORT raises its own types (InvalidProtobuf, Fail, ...)
            raise ModelError(f"cannot load {path} as an ONNX model: {str(exc).strip().splitlines()[0]}") from exc

    def _read_io(self, path: Path) -> None:
        """The image input, the outputs and the metadata of the session."""
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.input_dtype = _tensor_dtype(path, self.input_name, inputs[0].type)
        if len(self.input_shape) != 4:
            raise ModelError(f"{path}: input {self.input_name!r} has shape {self.input_shape}, expected (B, 3, H, W)")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_shapes = [list(o.shape) for o in self.session.get_outputs()]
        # Half-precision outputs are widened on the host: the decoders work in float32.
        self.half_outputs = any(o.type == "tensor(float16)" for o in self.session.get_outputs())
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def _gpu_options(self, path: Path, providers: list[ProviderSpec]) -> list[ProviderSpec]:
        try:
            name, hw, dynamic = _onnx_input(path, self.options)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own types
            raise ModelError(f"cannot load {path} as an ONNX model: {str(exc).strip().splitlines()[0]}") from exc
        if any(_provider_name(p) == "TensorrtExecutionProvider" for p in providers):
            (self.options.engine_cache_dir or default_cache_dir()).mkdir(parents=True, exist_ok=True)
        return provider_options(providers, self.options, self.max_batch_size, name, hw, dynamic)

    @property
    def fixed_batch(self) -> int | None:
        """The model's batch size when it is not dynamic (batches are padded to it)."""
        b = self.input_shape[0]
        return b if isinstance(b, int) and b > 0 else None

    @property
    def input_hw(self) -> tuple[int, int]:
        return resolve_input_hw(self.input_shape, self.metadata, self.options, self.path)

    @property
    def dynamic_hw(self) -> bool:
        """Height and width both symbolic in the model, and no TensorRT provider in use (its
        engines are built for the profile's one shape; another would rebuild them)."""
        return not any(isinstance(d, int) and d > 0 for d in self.input_shape[2:4]) \
            and "TensorrtExecutionProvider" not in self.active_providers

    @property
    def rect_by_default(self) -> bool:
        """On the CPU provider only: GPU providers tune kernels per input shape (cuDNN's search)."""
        return self.dynamic_hw and self.device == "cpu"

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        """Outputs in host memory."""
        if self._binding is None:
            outputs = self.session.run(self.output_names, {self.input_name: blob.astype(self.input_dtype, copy=False)})
        else:
            self._run_bound(blob)
            outputs = self._binding.copy_outputs_to_cpu()
        return [o.astype(np.float32) if o.dtype == np.float16 else o for o in outputs]

    def run_on_device(self, blob: np.ndarray) -> list[Any]:
        """Outputs where the provider put them: ONNX Runtime ``OrtValue`` objects on the GPU
        (with I/O binding on a GPU provider), else host arrays."""
        if self._binding is None or self.device == "cpu" or self.half_outputs:
            return self.run(blob)
        self._run_bound(blob)
        return self._binding.get_outputs()

    def _run_bound(self, blob: np.ndarray) -> None:
        b = self._binding
        assert b is not None, "bound runs need I/O binding"
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        b.bind_cpu_input(self.input_name, np.ascontiguousarray(blob, dtype=self.input_dtype))
        for name in self.output_names:  # ORT allocates them on the device, sized for this batch
            b.bind_output(name, self.device, self.options.device_id if self.device == "cuda" else 0)
        self.session.run_with_iobinding(b)
        b.synchronize_outputs()  # the CUDA provider's stream has finished writing them

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "requested_providers": self.requested_providers,
            "active_providers": self.active_providers,
            "provider_fallback": self.fell_back,
            "io_binding": self.io_binding,
            "output_device": self.device,
            **({"provider_options": {p: dict(o) for p, o in self.session.get_provider_options().items() if p in GPU_PROVIDERS}}
               if self.device == "cuda" else {}),
        }


_INPUT_TYPES: dict[str, np.dtype] = {"tensor(float)": np.dtype(np.float32), "tensor(float16)": np.dtype(np.float16)}


def _tensor_dtype(path: Path, name: str, onnx_type: str) -> np.dtype:
    """The NumPy type of the image input: float32, or float16 for half-precision exports."""
    try:
        return _INPUT_TYPES[onnx_type]
    except KeyError:
        raise ModelError(f"{path}: input {name!r} is {onnx_type}; vidpipe feeds images as float32 or float16") from None
