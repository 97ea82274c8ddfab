"""Native TensorRT backend (TensorRT ≥ 10 Python API, extra ``[trt]``).

The ONNX file is built into an engine once (FP16 when asked and the GPU has fast FP16;
one optimisation profile for batch 1 … ``max_batch_size``) and the engine is cached on
disk under a key made of the model's SHA-256, the TensorRT version, the GPU's name, the
precision and the profile: change any of them and a new engine is built. Building takes
minutes on a Jetson, so its progress is logged phase by phase. Inference copies the batch
into pinned host memory, then to the device, runs ``execute_async_v3`` on a CUDA stream,
and leaves the outputs on the device for GPU post-processing (``run_on_device``) or copies
them back (``run``). CUDA memory and streams come from Numba's CUDA driver bindings.

TensorRT's wheels come from NVIDIA's package index, which CI cannot reach; without them
this module imports, and creating the backend raises a :class:`ModelError` naming the extra.

Example (on a machine with a GPU and ``pip install 'vidpipe[trt]'``):
    >>> backend = TensorRTBackend("model.onnx", BackendOptions(fp16=True), max_batch_size=8)  # doctest: +SKIP
    >>> backend.info()["engine"]                                                        # doctest: +SKIP
    '/home/me/.cache/vidpipe/engines/model-3f2a9c4e1b7d8a60.engine'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import ModelError
from pipeline.infer.backends.imgsz import resolve_input_hw
from pipeline.infer.backends.onnxruntime import default_cache_dir
from pipeline.infer.config import BackendOptions
from pipeline.infer.kernels import cuda as kernels_cuda

log = logging.getLogger("vidpipe.backend.tensorrt")

INSTALL_HINT = ("TensorRT is not installed: pip install 'vidpipe[trt]' --extra-index-url https://pypi.nvidia.com "
                "(on Jetson, TensorRT comes with JetPack: see the README, GPUs and Jetson)")


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise ModelError(INSTALL_HINT) from exc
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise ModelError(f"TensorRT {trt.__version__} is too old: vidpipe needs TensorRT >= 10 (execute_async_v3)")
    return trt


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def engine_cache_key(model_sha256: str, trt_version: str, gpu_name: str, precision: str,
                     profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]) -> str:
    """What an engine depends on, hashed: a different model, TensorRT, GPU, precision or
    batch profile gets a different engine.

    >>> k = engine_cache_key("ab" * 32, "10.3.0", "NVIDIA H100", "fp16", ((1, 3, 640, 640), (8, 3, 640, 640), (8, 3, 640, 640)))
    >>> len(k), k == engine_cache_key("ab" * 32, "10.3.0", "NVIDIA H100", "fp32", ((1, 3, 640, 640),) * 3)
    (16, False)
    """
    text = json.dumps([model_sha256, trt_version, gpu_name, precision, [list(s) for s in profile]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _onnx_metadata(path: Path) -> dict[str, str]:
    """Ultralytics metadata (names, imgsz) without building anything: via onnx or ONNX Runtime."""
    try:
        import onnx

        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except ImportError:
        pass
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(sess.get_modelmeta().custom_metadata_map)
    except ImportError:
        return {}


class TensorRTBackend:
    """One TensorRT engine and execution context (a :class:`~pipeline.infer.backends.base.Backend`)."""

    name = "tensorrt"

    def __init__(self, path: str | Path, options: BackendOptions | None = None, max_batch_size: int = 1) -> None:
        trt = import_tensorrt()
        cuda = kernels_cuda.cuda_module()
        if cuda is None:
            raise ModelError(f"the TensorRT backend needs a CUDA GPU: {kernels_cuda.unavailable_reason()}")
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        self.options = options or BackendOptions()
        self.max_batch_size = max_batch_size
        cuda.select_device(self.options.device_id)
        device = cuda.get_current_device()
        self.gpu_name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
        self._trt, self._cuda = trt, cuda
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.metadata = _onnx_metadata(self.path)
        self.engine = self._load_or_build()
        self.context = self.engine.create_execution_context()
        self.stream = cuda.stream()
        self._setup_io()
        self.requested_providers = ["tensorrt"]
        self.active_providers = [f"TensorRT {trt.__version__} ({self.precision}) on {self.gpu_name}"]
        self.fell_back = False
        self.device = "cuda"
        self.io_binding = True

    # -- engine ---------------------------------------------------------------------------
    def _parse(self):
        """Builder, network and parser of the ONNX file (the parser owns the weights: keep it)."""
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(self.path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(f"TensorRT cannot parse {self.path}: {errors}")
        return builder, network, parser

    def _load_or_build(self):
        trt = self._trt
        builder, network, parser = self._parse()
        name, shape = network.get_input(0).name, list(network.get_input(0).shape)
        h, w = resolve_input_hw(shape, self.metadata, self.options, self.path)
        dynamic = shape[0] < 0
        top = self.max_batch_size if dynamic else shape[0]
        self.profile = ((1 if dynamic else top, 3, h, w), (top, 3, h, w), (top, 3, h, w))
        self.precision = "fp16" if self.options.fp16 else "fp32"
        key = engine_cache_key(file_sha256(self.path), trt.__version__, self.gpu_name, self.precision, self.profile)
        cache = self.options.engine_cache_dir or default_cache_dir()
        self.engine_path = cache / f"{self.path.stem}-{key}.engine"
        runtime = trt.Runtime(self._logger)
        if self.engine_path.exists():
            log.info("TensorRT engine from cache: %s", self.engine_path)
            engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if engine is not None:
                return engine
            log.warning("cached engine %s does not load (corrupt?): building again", self.engine_path)
        data = self._build(builder, network, name, dynamic)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = self.engine_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(self.engine_path)  # atomic: two processes building at once never read half a file
        self.engine_path.with_suffix(".json").write_text(json.dumps(
            {"model": str(self.path), "tensorrt": trt.__version__, "gpu": self.gpu_name, "precision": self.precision,
             "profile": self.profile, "workspace_gb": self.options.workspace_gb}, indent=1))
        return runtime.deserialize_cuda_engine(data)

    def _build(self, builder, network, input_name: str, dynamic: bool) -> bytes:
        trt = self._trt
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.options.workspace_gb * 2**30))
        if self.options.fp16:
            if not builder.platform_has_fast_fp16:
                log.warning("this GPU has no fast FP16: building an FP16 engine anyway (it may be slower)")
            config.set_flag(trt.BuilderFlag.FP16)
        if dynamic:
            profile = builder.create_optimization_profile()
            profile.set_shape(input_name, *self.profile)
            config.add_optimization_profile(profile)
        config.progress_monitor = _progress_monitor(trt)
        log.warning("building a TensorRT %s engine for %s on %s (batch %s): this takes minutes, once",
                    self.precision, self.path.name, self.gpu_name, self.profile[2][0])
        t = time.perf_counter()
        data = builder.build_serialized_network(network, config)
        if data is None:
            raise ModelError(f"TensorRT could not build an engine for {self.path} (see the TensorRT log above)")
        log.warning("TensorRT engine built in %.0f s: %s", time.perf_counter() - t, self.engine_path)
        return bytes(data)

    # -- execution ------------------------------------------------------------------------
    def _setup_io(self) -> None:
        trt, cuda, engine = self._trt, self._cuda, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: expected one image input, found {inputs}")
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n not in inputs]
        top = self.profile[2]
        self.context.set_input_shape(self.input_name, top)
        self.input_shape = list(engine.get_tensor_shape(self.input_name))
        self.output_shapes = [list(self.context.get_tensor_shape(n)) for n in self.output_names]
        dtype = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self.input_dtype = dtype[self.input_name]
        self.half_outputs = any(dtype[n] == np.float16 for n in self.output_names)
        self._device = {n: cuda.device_array(tuple(s), dtype[n]) for n, s in
                        [(self.input_name, top), *zip(self.output_names, self.output_shapes)]}
        self._host = {n: cuda.pinned_array(a.shape, a.dtype) for n, a in self._device.items()}
        for n, a in self._device.items():
            self.context.set_tensor_address(n, a.device_ctypes_pointer.value)

    @property
    def fixed_batch(self) -> int | None:
        return None if self.profile[0][0] != self.profile[2][0] else self.profile[2][0]

    @property
    def input_hw(self) -> tuple[int, int]:
        return int(self.profile[2][2]), int(self.profile[2][3])

    @property
    def dynamic_hw(self) -> bool:
        return False  # the engine is built for the profile's one height and width

    @property
    def rect_by_default(self) -> bool:
        return False

    def _execute(self, blob: np.ndarray) -> int:
        b = blob.shape[0]
        if b > self.profile[2][0]:
            raise ValueError(f"batch of {b} for a TensorRT engine built for at most {self.profile[2][0]}")
        host_in = self._host[self.input_name]
        host_in[:b] = blob
        self._device[self.input_name][:b].copy_to_device(host_in[:b], stream=self.stream)
        self.context.set_input_shape(self.input_name, tuple(blob.shape))
        if not self.context.execute_async_v3(int(self.stream)):  # the CUstream handle (numba's and numba-cuda's Stream)
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        return b

    def run_on_device(self, blob: np.ndarray) -> list[Any]:
        """Outputs left on the GPU (device array views, valid until the next run); an engine
        with half-precision outputs returns them widened on the host (the kernels are float32)."""
        if self.half_outputs:
            return self.run(blob)
        with self._cuda.gpus[self.options.device_id]:  # the inference stage's thread, not the loader's
            b = self._execute(blob)
            self.stream.synchronize()
            return [self._device[n][:b] for n in self.output_names]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        with self._cuda.gpus[self.options.device_id]:
            b = self._execute(blob)
            for n in self.output_names:
                self._device[n][:b].copy_to_host(self._host[n][:b], stream=self.stream)
            self.stream.synchronize()
            return [self._host[n][:b].astype(np.float32) for n in self.output_names]

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "engine": str(self.engine_path), "precision": self.precision,
                "gpu": self.gpu_name, "profile": [list(s) for s in self.profile], "tensorrt": self._trt.__version__,
                "active_providers": self.active_providers, "provider_fallback": False, "output_device": "cuda"}


def _progress_monitor(trt):
    """Logs TensorRT's build phases (TensorRT >= 10 calls it from the builder)."""

    class LogProgress(trt.IProgressMonitor):  # type: ignore[name-defined]  # TensorRT is imported at run time
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._started: dict[str, float] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self._started[phase_name] = time.perf_counter()
            log.info("TensorRT build: %s (%d steps)", phase_name, num_steps)

        def step_complete(self, phase_name, step):
            log.debug("TensorRT build: %s step %d", phase_name, step)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            took = time.perf_counter() - self._started.pop(phase_name, time.perf_counter())
            log.info("TensorRT build: %s done in %.1f s", phase_name, took)

    return LogProgress()
