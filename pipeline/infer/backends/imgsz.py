"""The input size a model with a symbolic height and width is fed at (Ultralytics'
``imgsz``): one rule for ONNX Runtime, its TensorRT provider's profile and native TensorRT."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.errors import ModelError
from pipeline.infer.config import BackendOptions

DEFAULT_IMGSZ = (640, 640)


def dynamic_input_hw(metadata: Mapping[str, str], options: BackendOptions, path: Path | str = "model") -> tuple[int, int]:
    """The height and width a model with a symbolic input is fed at: ``model.imgsz``, else
    its ``imgsz`` metadata (Ultralytics writes a number or ``[h, w]``), else 640x640.

    >>> dynamic_input_hw({"imgsz": "[640, 640]"}, BackendOptions(imgsz=960))
    (960, 960)
    >>> dynamic_input_hw({"imgsz": "[384, 640]"}, BackendOptions())
    (384, 640)
    """
    if options.imgsz is not None:
        return options.imgsz
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
