"""The post-processing kernels, on the CPU (Numba) or on the GPU (Numba CUDA).

Both sets have one interface, :class:`Kernels`, and the set is chosen once when a model
loads (:func:`select_kernels`): nothing downstream passes a device string around. A set
runs the backend (so GPU outputs stay on the GPU), selects candidates, and decodes masks.

Example:
    >>> kernels, why_not_gpu = select_kernels("cpu")
    >>> kernels.device, why_not_gpu
    ('cpu', None)
"""

from __future__ import annotations

import logging

from pipeline.infer.kernels.base import MASK_MODES, Candidates, Kernels, MaskCrops
from pipeline.infer.kernels.cpu import CpuKernels

__all__ = ["MASK_MODES", "Candidates", "Kernels", "MaskCrops", "select_kernels"]

log = logging.getLogger("vidpipe.kernels")


def select_kernels(device: str, device_id: int = 0) -> tuple[Kernels, str | None]:
    """The kernels for ``device``, and why the GPU was not used where it was asked for."""
    if device != "cuda":
        return CpuKernels(), None
    from pipeline.infer.kernels import cuda

    if not cuda.available():
        reason = cuda.unavailable_reason()
        log.warning("GPU post-processing asked for, but %s: post-processing on the CPU", reason)
        return CpuKernels(), reason
    return cuda.CudaKernels(device_id), None
