"""The input size a backend runs a model at (Ultralytics' ``imgsz``) and the stride its
sides must be multiples of: one rule for ONNX Runtime, its TensorRT provider's profile and
native TensorRT."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.core.errors import ModelError
from pipeline.infer.config import BackendOptions

DEFAULT_IMGSZ = (640, 640)
DEFAULT_STRIDE = 32  # YOLO's largest stride, where a model's metadata gives none


def model_stride(metadata: Mapping[str, str]) -> int | None:
    """The model's largest stride (Ultralytics' ``stride`` metadata), None without it: what
    a dynamic input's sides must be multiples of.

    >>> model_stride({"stride": "[8, 16, 32]"}), model_stride({})
    (32, None)
    """
    try:
        stride = ast.literal_eval(metadata.get("stride") or "None")
    except (ValueError, SyntaxError):
        return None
    stride = max(stride) if isinstance(stride, (list, tuple)) and stride else stride
    return int(stride) if isinstance(stride, (int, float)) and not isinstance(stride, bool) and stride >= 1 else None


def check_stride(hw: tuple[int, int], stride: int, path: Path | str) -> None:
    """``model.imgsz`` sides the network cannot divide into its grid are an error naming a
    size that works."""
    h, w = hw
    if h % stride or w % stride:
        up_h, up_w = -(-h // stride) * stride, -(-w // stride) * stride
        raise ModelError(f"{path}: model.imgsz {w}x{h}: each side must be a multiple of the model's stride {stride} "
                         f"(e.g. {up_w}x{up_h})")


def resolve_input_hw(shape: Sequence[Any], metadata: Mapping[str, str], options: BackendOptions,
                     path: Path | str = "model") -> tuple[int, int]:
    """The height and width a model of input ``shape`` (B, C, H, W) runs at: its fixed
    sides; a symbolic side (a name, None or -1) from ``model.imgsz``, else the ``imgsz``
    metadata (Ultralytics writes a number or ``[h, w]``), else 640. With ``model.imgsz``
    and the metadata's stride, sides off the stride are an error here, before a TensorRT
    engine would be built for them (a classifier's excepted: it is centre-cropped).

    >>> resolve_input_hw(["batch", 3, "h", "w"], {"imgsz": "[640, 640]"}, BackendOptions(imgsz=960))
    (960, 960)
    >>> resolve_input_hw([1, 3, 384, "w"], {"imgsz": "[384, 640]"}, BackendOptions())
    (384, 640)
    """
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape[2:4]]
    if fixed[0] is not None and fixed[1] is not None:
        return fixed[0], fixed[1]
    if options.imgsz is not None:
        size = options.imgsz
        stride = model_stride(metadata)
        if stride is not None and metadata.get("task") != "classify":
            check_stride(size, stride, path)
    else:
        size = _metadata_imgsz(metadata, path)
    return fixed[0] or size[0], fixed[1] or size[1]


def _metadata_imgsz(metadata: Mapping[str, str], path: Path | str) -> tuple[int, int]:
    text = metadata.get("imgsz")
    if not text:
        return DEFAULT_IMGSZ
    try:
        size = ast.literal_eval(text)
        size = [size, size] if isinstance(size, int) else list(size)
        h, w = int(size[0]), int(size[1])
    except (ValueError, SyntaxError, TypeError, IndexError) as exc:
        raise ModelError(f"{path}: imgsz metadata {text!r} is not a size (a number or [height, width]); "
                         f"set model.imgsz") from exc
    if h < 1 or w < 1:
        raise ModelError(f"{path}: imgsz metadata {text!r} is not a size; set model.imgsz")
    return h, w
