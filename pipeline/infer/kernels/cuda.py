"""GPU post-processing: candidate selection and mask decoding as Numba CUDA kernels, for
model outputs that already live on the GPU (ONNX Runtime with I/O binding on CUDA or
TensorRT, the native TensorRT backend).

The same arithmetic as the CPU kernels (kernels/cpu.py), one GPU thread per anchor or per mask
pixel: only the per-anchor scores (A floats) and the candidates' rows come to the host,
where NMS runs on a few hundred boxes; the prototypes stay on the device and masks come
back as the same column-major uint8 crops. On CUDA, products may fuse into FMA
instructions, so a pixel whose logit is within rounding of 0 can differ from the CPU
(tested: mask IoU ≥ 0.99, boxes and scores identical).

With ``NUMBA_ENABLE_CUDASIM=1`` Numba runs these kernels on the CPU (slowly): that is
how CPU-only CI checks them against the CPU kernels.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import numpy as np

from pipeline.infer.kernels import cpu as kernels
from pipeline.infer.kernels.base import MASK_MODES, Candidates, MaskCrops

log = logging.getLogger("vidpipe.kernels.cuda")

_cuda: Any = None
_unavailable: str | None = None
_compiled: dict[str, Any] = {}
THREADS = 128


def cuda_module():
    """numba.cuda, or None with the reason in :func:`unavailable_reason`."""
    global _cuda, _unavailable
    if _cuda is None and _unavailable is None:
        try:
            from numba import cuda

            if not cuda.is_available():
                _unavailable = "no CUDA GPU or driver visible to Numba"
            else:
                _cuda = cuda
        except Exception as exc:  # noqa: BLE001 - numba raises several types when CUDA is half-installed
            _unavailable = f"numba.cuda cannot load: {exc}"
    return _cuda


def available() -> bool:
    return cuda_module() is not None


def unavailable_reason() -> str | None:
    cuda_module()
    return _unavailable


_bilinear_taps = kernels._bilinear_taps.py_func  # the CPU kernels' taps, compiled for the device below


def _logit(coefs, protos, i: int, py: int, px: int) -> Any:
    acc = np.float32(0.0)
    for k in range(protos.shape[0]):
        acc += coefs[i, k] * protos[k, py, px]
    return acc


def on_device(device_id: int):
    """Makes ``device_id`` current in this thread for the block: stages run in their own
    threads, and Numba would otherwise use device 0 there."""
    cuda = cuda_module()
    return cuda.gpus[device_id] if cuda is not None else contextlib.nullcontext()


def _scores(pred, channels_first, has_obj, nc, confidence, allowed, score, cls):
    """Per anchor: the best class and its score (× objectness), or -1 below threshold."""
    a = _cuda.grid(1)
    n = pred.shape[1] if channels_first else pred.shape[0]
    if a >= n:
        return
    first = 5 if has_obj else 4
    obj = 1.0
    if has_obj:
        obj = pred[4, a] if channels_first else pred[a, 4]
    best = -1.0
    best_c = 0
    for c in range(nc):
        v = pred[first + c, a] if channels_first else pred[a, first + c]
        if v > best:
            best = v
            best_c = c
    s = best * obj
    cls[a] = best_c
    score[a] = s if (obj >= confidence and s >= confidence and allowed[best_c]) else -1.0


def _gather(pred, channels_first, idx, first_coef, out):
    """Rows of the candidates: xywh then the mask coefficients, (K, 4 + nm)."""
    k, j = _cuda.grid(2)
    if k >= idx.shape[0] or j >= out.shape[1]:
        return
    ch = j if j < 4 else first_coef + j - 4
    a = idx[k]
    out[k, j] = pred[ch, a] if channels_first else pred[a, ch]


def _masks(coefs, protos, boxes, offsets, geometry, mode, tradeoff_factor, out):
    """One thread per mask pixel (grid-stride), block row y = detection; column-major crops."""
    i = _cuda.blockIdx.y
    x0, y0, x1, y1 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
    bw, bh = x1 - x0, y1 - y0
    if bw <= 0 or bh <= 0:
        return
    sx, sy, pad_x, pad_y, in_w, in_h = geometry[0], geometry[1], geometry[2], geometry[3], geometry[4], geometry[5]
    ph, pw = protos.shape[1], protos.shape[2]
    kx, ky = pw / in_w, ph / in_h
    if mode == 2:
        gw, gh = float(pw), float(ph)
    else:
        gw = pw + tradeoff_factor * (in_w - pw)
        gh = ph + tradeoff_factor * (in_h - ph)
    start = offsets[i]
    q = _cuda.blockIdx.x * _cuda.blockDim.x + _cuda.threadIdx.x
    stride = _cuda.gridDim.x * _cuda.blockDim.x
    while q < bw * bh:
        c = q // bh
        r = q - c * bh
        if mode == 0:  # accurate: bilinear at the source pixel
            a, b, t = _bilinear_taps(((x0 + c + 0.5) * sx + pad_x) * kx - 0.5, pw)
            ra, rb, wy = _bilinear_taps(((y0 + r + 0.5) * sy + pad_y) * ky - 0.5, ph)
            t = np.float32(t)
        else:  # tradeoff / fast: bilinear at the centre of the grid cell the pixel falls in
            gc = min(int(gw) - 1, max(0, int(math.floor(((x0 + c + 0.5) * sx + pad_x) * gw / in_w))))
            gr = min(int(gh) - 1, max(0, int(math.floor(((y0 + r + 0.5) * sy + pad_y) * gh / in_h))))
            a, b, t = _bilinear_taps((gc + 0.5) * pw / gw - 0.5, pw)
            ra, rb, wy = _bilinear_taps((gr + 0.5) * ph / gh - 0.5, ph)
        wy = np.float32(wy)
        la = _logit(coefs, protos, i, ra, a)
        top = np.float32(la + (_logit(coefs, protos, i, ra, b) - la) * t)
        lb = _logit(coefs, protos, i, rb, a)
        bottom = np.float32(lb + (_logit(coefs, protos, i, rb, b) - lb) * t)
        out[start + q] = 1 if top + (bottom - top) * wy > 0 else 0
        q += stride


def _kernels() -> dict[str, Any]:
    if not _compiled:
        cuda = cuda_module()
        if cuda is None:
            raise RuntimeError(f"GPU post-processing unavailable: {_unavailable}")
        global _bilinear_taps, _logit  # device functions replace the Python ones inside kernels
        taps, logit = cuda.jit(device=True)(_bilinear_taps), cuda.jit(device=True)(_logit)
        _bilinear_taps, _logit = taps, logit
        _compiled.update(scores=cuda.jit(_scores), gather=cuda.jit(_gather), masks=cuda.jit(_masks))
    return _compiled


def to_device(array: Any):
    """A device array from a host array, an ONNX Runtime OrtValue on CUDA, or anything with
    ``__cuda_array_interface__`` (CuPy, PyTorch); no copy when it is already on the GPU."""
    cuda = cuda_module()
    if isinstance(array, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(array))
    if cuda.devicearray.is_cuda_ndarray(array):  # Numba's own (also under the simulator)
        return array
    if cuda.is_cuda_array(array):
        return cuda.as_cuda_array(array)
    if hasattr(array, "data_ptr") and hasattr(array, "device_name"):  # onnxruntime.OrtValue
        if array.device_name().lower() != "cuda":
            return cuda.to_device(array.numpy())
        # Integer outputs: class maps of semantic models (their decoder copies them to the host).
        typestr = {"tensor(float)": "<f4", "tensor(float16)": "<f2", "tensor(int64)": "<i8",
                   "tensor(int32)": "<i4", "tensor(uint8)": "|u1"}.get(array.data_type())
        if typestr is None:
            raise TypeError(f"GPU post-processing reads float or integer outputs, got {array.data_type()}")
        desc = {"shape": tuple(array.shape()), "typestr": typestr, "data": (array.data_ptr(), False), "version": 3,
                "strides": None, "stream": None}
        return cuda.from_cuda_array_interface(desc, owner=array, sync=False)
    raise TypeError(f"cannot put {type(array).__name__} on the GPU")


def select_candidates(pred, channels_first: bool, has_obj: bool, nc: int, confidence: float,
                      allowed: np.ndarray, nm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Like kernels.select_candidates on a device array; also returns the candidates' rows
    (xywh + mask coefficients) in host memory. ``allowed`` may already be on the device."""
    cuda, k = cuda_module(), _kernels()
    n = pred.shape[1] if channels_first else pred.shape[0]
    score = cuda.device_array(n, np.float32)
    cls = cuda.device_array(n, np.int64)
    k["scores"][(n + THREADS - 1) // THREADS, THREADS](pred, channels_first, has_obj, nc, np.float32(confidence),
                                                        to_device(allowed), score, cls)
    host_score = score.copy_to_host()
    idx = np.flatnonzero(host_score >= 0).astype(np.int64)  # anchor order, as the CPU kernel
    rows = np.empty((len(idx), 4 + nm), np.float32)
    if len(idx):
        d_rows = cuda.device_array(rows.shape, np.float32)
        grid = ((len(idx) + 15) // 16, (rows.shape[1] + 15) // 16)
        k["gather"][grid, (16, 16)](pred, channels_first, cuda.to_device(idx), (5 if has_obj else 4) + nc, d_rows)
        rows = d_rows.copy_to_host()
    return idx, host_score[idx], cls.copy_to_host()[idx], rows


def decode_masks(coefs: np.ndarray, protos, mask_boxes: np.ndarray, geometry: np.ndarray, mode: int,
                 tradeoff_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Like kernels.decode_masks with ``protos`` on the device: (flat uint8, offsets), no run
    lengths (the sinks that want RLE encode it from the crops)."""
    cuda, k = cuda_module(), _kernels()
    n = mask_boxes.shape[0]
    sizes = (mask_boxes[:, 2] - mask_boxes[:, 0]).astype(np.int64) * (mask_boxes[:, 3] - mask_boxes[:, 1])
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.maximum(sizes, 0), out=offsets[1:])
    if n == 0 or offsets[-1] == 0:
        return np.zeros(int(offsets[-1]), np.uint8), offsets
    out = cuda.device_array(int(offsets[-1]), np.uint8)
    blocks = min(1024, (int(sizes.max()) + THREADS - 1) // THREADS)
    k["masks"][(blocks, n), THREADS](cuda.to_device(np.ascontiguousarray(coefs, np.float32)), protos,
                                      cuda.to_device(np.ascontiguousarray(mask_boxes)), cuda.to_device(offsets),
                                      cuda.to_device(np.asarray(geometry, np.float64)), mode, float(tradeoff_factor), out)
    return out.copy_to_host(), offsets


def warm_up() -> None:
    """Compile the kernels before the first frame (when a GPU is there)."""
    if not available():
        return
    pred = to_device(np.random.default_rng(0).random((4 + 2 + 32, 6)).astype(np.float32))
    select_candidates(pred, True, False, 2, 0.0, np.ones(2, np.bool_), 32)
    protos = to_device(np.zeros((32, 8, 8), np.float32))
    for mode in MASK_MODES.values():
        decode_masks(np.zeros((1, 32), np.float32), protos, np.array([[2, 2, 6, 6]], np.int32),
                     np.array([1.0, 1.0, 0.0, 0.0, 32.0, 32.0]), mode, 0.5)


class CudaKernels:
    """The Numba CUDA kernels behind the :class:`~pipeline.infer.kernels.base.Kernels`
    protocol, each call in the device's context (stages run in their own threads)."""

    device = "cuda"

    def __init__(self, device_id: int = 0) -> None:
        self.device_id = device_id

    def outputs(self, backend: Any, blob: np.ndarray) -> list[Any]:
        with on_device(self.device_id):  # host outputs are uploaded; device outputs stay where they are
            return [to_device(o) for o in backend.run_on_device(blob)]

    def upload(self, array: np.ndarray) -> Any:
        with on_device(self.device_id):
            return to_device(array)

    def candidates(self, output0: Any, channels_first: bool, has_objectness: bool, num_classes: int,
                   num_masks: int, confidence: float, allowed: Any) -> Candidates:
        with on_device(self.device_id):  # only the candidates' rows (box + coefficients) come to the host
            idx, scores, classes, rows = select_candidates(output0, channels_first, has_objectness, num_classes,
                                                           confidence, allowed, num_masks)
        position = np.arange(len(idx), dtype=np.int64)
        boxes = kernels.gather_boxes(rows, False, position)
        return Candidates(scores, classes, boxes, rows, position, 4, False)

    def decode_masks(self, coefs: np.ndarray, protos: Any, mask_boxes: np.ndarray, geometry: np.ndarray,
                     mode: int, tradeoff_factor: float, frame_hw: tuple[int, int]) -> MaskCrops:
        with on_device(self.device_id):  # run lengths: encoded from the crops on the host, when asked
            return MaskCrops(*decode_masks(coefs, protos, mask_boxes, geometry, mode, tradeoff_factor))

    def warm_up(self) -> None:
        with on_device(self.device_id):
            warm_up()
