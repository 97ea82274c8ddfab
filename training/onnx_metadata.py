"""Ultralytics-compatible ONNX metadata for vidpipe's exported models (dev tool; needs ``onnx``).

Ultralytics' loader (``AutoBackend``) reads ``batch`` as the export batch size and splits
batches by it: ``-1`` made ``YOLO("shapes-yolov8seg.onnx")`` fail with ``split_size=-1``. Its
own exports write the batch they were traced with (``1``) and the export arguments in
``args``. The keys below are those of an Ultralytics 8.4.190 ``export(format="onnx",
dynamic=True)`` of a YOLO11-seg model, less ``date``, ``version`` and ``docs``. To
Ultralytics "dynamic" means batch, height and width: its predictor then letterboxes a frame
to the smallest stride-multiple rectangle (e.g. 384x640), so the files declare height and
width symbolic too, as its own dynamic exports do (the network is fully convolutional and
its anchors follow the input size). vidpipe still letterboxes to ``imgsz`` from the metadata.

Rewrite the metadata and the declared input/output axes of existing files in place (nodes
and weights untouched)::

    python -m training.onnx_metadata pipeline/zoo/shapes-yolov8seg.onnx pipeline/zoo/shapes-yolov5seg.onnx
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sources.keypoints import KEYPOINT_NAMES
from sources.scene import CLASS_NAMES

log = logging.getLogger("vidpipe.train")

IMGSZ = 640


def ultralytics_metadata(layout: str, imgsz: int = IMGSZ) -> dict[str, str]:
    """The metadata of a bundled model, key for key as Ultralytics writes a dynamic export's
    (values are ``str()`` of the Python values, as Ultralytics' ONNX exporter stores them)."""
    if layout not in ("yolov8-seg", "yolov5-seg", "yolov8-pose"):
        raise ValueError(f"unknown layout {layout!r}")
    pose = layout == "yolov8-pose"
    return {
        "description": f"vidpipe synthetic-shapes YOLO-{'pose' if pose else 'seg'} ({layout} layout)",
        "author": "vidpipe",
        "license": "Apache-2.0",
        "stride": "32",
        "task": "pose" if pose else "segment",
        "batch": "1",
        "imgsz": str([imgsz, imgsz]),
        "names": str({i: n for i, n in enumerate(CLASS_NAMES)}),
        "args": str({"data": None, "batch": 1, "fraction": 1.0, "quantize": None, "nms": None, "dynamic": True,
                     "simplify": False, "opset": 17}),
        "channels": "3",
        "end2end": "False",
        # The YOLOv5 layout is not an Ultralytics head.
        **({"head": "Pose" if pose else "Segment"} if layout.startswith("yolov8") else {}),
        # Ultralytics writes the keypoint shape, and keypoint names per class.
        **({"kpt_shape": str([len(KEYPOINT_NAMES), 3]),
            "kpt_names": str({i: list(KEYPOINT_NAMES) for i in range(len(CLASS_NAMES))})} if pose else {}),
    }


def write_metadata(model: object, meta: dict[str, str]) -> None:
    """Replace the ``metadata_props`` of a loaded ``onnx.ModelProto`` with ``meta``."""
    props = model.metadata_props  # type: ignore[attr-defined]
    del props[:]
    for k, v in meta.items():
        entry = props.add()
        entry.key, entry.value = k, v


def layout_of(path: Path) -> str:
    """The bundled files' layout from their name (``shapes-yolov8seg.onnx`` -> ``yolov8-seg``)."""
    stem = path.stem.split("-")[-1]
    for task in ("seg", "pose"):
        if stem.endswith(task):
            return f"{stem[: -len(task)]}-{task}"
    raise ValueError(f"{path}: not a bundled model name (shapes-<layout>seg.onnx or shapes-<layout>pose.onnx)")


def dynamic_axes(layout: str) -> dict[str, dict[int, str]]:
    """Symbolic axes of a dynamic export: batch, and every axis that follows the input size
    (the anchors are the last axis of YOLOv8 ``(B, C, A)``, the middle one of YOLOv5 ``(B, A, C)``)."""
    anchors = 1 if layout.startswith("yolov5") else 2
    return {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", anchors: "anchors"},
            "output1": {0: "batch", 2: "proto_height", 3: "proto_width"}}


def declare_dynamic_axes(model: object, layout: str) -> None:
    """Declare the input's and outputs' size-dependent axes symbolic (:func:`dynamic_axes`);
    the intermediate shapes the exporter recorded for the traced size are dropped (ONNX
    Runtime infers them)."""
    graph = model.graph  # type: ignore[attr-defined]
    axes = dynamic_axes(layout)
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, name in axes.get(value.name, {}).items():
            if axis < len(dims):
                dims[axis].ClearField("dim_value")
                dims[axis].dim_param = name
    del graph.value_info[:]


def rewrite(path: Path) -> None:
    """Rewrite one file's metadata and declared axes in place; nodes and weights unchanged."""
    import onnx

    model = onnx.load(str(path))
    body = [x.SerializeToString() for x in (*model.graph.node, *model.graph.initializer)]
    layout = layout_of(path)
    write_metadata(model, ultralytics_metadata(layout))
    declare_dynamic_axes(model, layout)
    assert [x.SerializeToString() for x in (*model.graph.node, *model.graph.initializer)] == body
    onnx.save(model, str(path))
    log.info("%s: metadata and dynamic axes rewritten", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in args.files:
        rewrite(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
