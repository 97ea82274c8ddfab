"""Ultralytics-compatible ONNX metadata for vidpipe's exported models (dev tool; needs ``onnx``).

Ultralytics' loader (``AutoBackend``) reads ``batch`` as the export batch size and splits
batches by it: ``-1`` made ``YOLO("shapes-yolov8seg.onnx")`` fail with ``split_size=-1``. Its
own exports write the batch they were traced with (``1``) and the export arguments in
``args``. The keys below are those of an Ultralytics 8.4.190 ``export(format="onnx")`` of a
YOLO11-seg model, less ``date``, ``version`` and ``docs``. One value differs from a
``dynamic=True`` export: ``args['dynamic']`` is False, because to Ultralytics "dynamic" means
batch, height and width, and it then letterboxes to the smallest rectangle (e.g. 384x640),
which our fixed 640x640 input refuses. With ``dynamic: False`` Ultralytics feeds 640x640
frames one at a time (the batch axis stays dynamic for vidpipe).

Rewrite the metadata of existing files in place (graph and weights untouched)::

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
        "args": str({"data": None, "batch": 1, "fraction": 1.0, "quantize": None, "nms": None, "dynamic": False,
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


def rewrite(path: Path) -> None:
    """Rewrite one file's metadata in place; the graph bytes stay as they were."""
    import onnx

    model = onnx.load(str(path))
    graph_before = model.graph.SerializeToString()
    write_metadata(model, ultralytics_metadata(layout_of(path)))
    assert model.graph.SerializeToString() == graph_before
    onnx.save(model, str(path))
    log.info("%s: metadata rewritten", path)


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
