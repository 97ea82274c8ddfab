"""Models that ship with vidpipe, so everything runs offline out of the box.

``shapes-yolov8seg.onnx`` and ``shapes-yolov5seg.onnx`` are the same small network trained
on the synthetic shapes world (sources/scene.py), exported in the two layouts users bring
from Ultralytics and Roboflow; ``shapes-yolov8pose.onnx`` is its pose variant (five
keypoints per shape, YOLOv8/11-pose layout). See MODEL_CARD.md beside this file.
"""

from __future__ import annotations

from pathlib import Path

ZOO_DIR = Path(__file__).resolve().parent
BUNDLED = {
    "shapes-yolov8seg": ZOO_DIR / "shapes-yolov8seg.onnx",
    "shapes-yolov5seg": ZOO_DIR / "shapes-yolov5seg.onnx",
    "shapes-yolov8pose": ZOO_DIR / "shapes-yolov8pose.onnx",
}


def default_model_path() -> Path:
    return BUNDLED["shapes-yolov8seg"]


def resolve_model(name_or_path: str | Path) -> Path:
    """A bundled model's name (``shapes-yolov8seg``) or a path to an ONNX file."""
    key = str(name_or_path)
    if key in BUNDLED:
        return BUNDLED[key]
    return Path(name_or_path).expanduser()
