"""Test fixtures from the real Ultralytics exporter and predictor (dev tool; ``make ultralytics-fixtures``).

ultralytics, like torch, is never a dependency of vidpipe nor imported by the package or its
tests: this script runs in a throwaway virtualenv (``.venv-ultralytics/``, see the Makefile)
and writes ``tests/fixtures/ultralytics/``: small ONNX files exported by Ultralytics' own
exporter for every output layout vidpipe decodes, a few fixed frames, and Ultralytics' own
predictions on those frames, which the tests compare vidpipe against without ultralytics.

Models (:mod:`training.ultralytics_models`): Ultralytics' own model YAMLs
(``yolo26-seg.yaml``, ``yolo11-pose.yaml``, ...) with their width/depth multiples scaled
down (one scale ``t``: depth 0.33, width 0.0625) and 4 DFL bins instead of 16, at ``imgsz``
160 (classification 64), so each ONNX file is 0.1-0.6 MB.

Why untrained weights, and very low thresholds: parity needs the same raw outputs decoded
the same way, not accurate models, but it needs predictions that are not degenerate. A
short training was tried (``--epochs N``; AdamW on 48 synthetic frames with exact labels
from :mod:`training.ultralytics_data`): within the few CPU-minutes this tool may take, the
scores of these tiny networks stay at the head's prior (~0.004) and are identical for every
anchor, as with Ultralytics' default initialisation, under which a network this narrow maps
every image to the same output. So the weights are seeded He-normal with BatchNorm
statistics measured on synthetic frames (``he_init``): outputs then depend on the pixels,
scores spread over an order of magnitude or more, and class rankings differ between frames.
The predictor (and the ``nms=True`` graph) run with ``conf`` 1e-4 and ``max_det`` 30, so
every frame has up to 30 detections with distinct float32 scores, boxes and masks all over
the frame, and keypoints, class rankings and class maps that follow the input. That
exercises all that parity checks: preprocessing, decoding, NMS, mask and keypoint scaling,
top-k and class maps. Accuracy is not measured here.

Also checks that vidpipe's bundled models load and predict in Ultralytics (``YOLO(path)``)
and records the outcome in the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from training import ultralytics_data as data
from training.ultralytics_models import IMGSZ, SCALE, TRAIN, cpu_nms_op, imgsz_of, make_model

log = logging.getLogger("vidpipe.fixtures")

SETTINGS = {"conf": 0.0001, "iou": 0.7, "imgsz": IMGSZ, "max_det": 30, "retina_masks": True, "agnostic_nms": False}

# YOLOv10 (yolov10n.yaml, nms=False) exports the same (1, 300, 6) layout as YOLO26's end-to-end
# head but its one-to-one box branch keeps 64 channels (0.7 MB): left out for the size budget.

# Exported fixtures: name -> (trained key, export arguments beyond format/imgsz, what it shows).
EXPORTS = {
    "yolo26-seg-e2e": ("yolo26-seg", {"nms": False}, "YOLO26 seg, end-to-end head: (1, 300, 6+32) + protos"),
    "yolo26-seg": ("yolo26-seg", {}, "YOLO26 seg, classic head (8.4 default nms=None): (1, 4+nc+32, A) + protos"),
    # The in-graph NMS filters by the export's conf (0.25 by default): lowered like the predictor's.
    "yolo11-seg-nms": ("yolo11-seg", {"nms": True, "conf": 0.0001},
                       "YOLO11 seg exported with nms=True: (1, 300, 6+32) + protos"),
    "yolo26-det-e2e": ("yolo26-det", {"nms": False}, "YOLO26 detect, end-to-end: (1, 300, 6)"),
    "yolo26-det": ("yolo26-det", {}, "YOLO26 detect, classic head: (1, 4+nc, A)"),
    "yolo11-det": ("yolo11-det", {}, "YOLO11 detect, classic: (1, 4+nc, A)"),
    "yolo11-pose": ("yolo11-pose", {}, "YOLO11 pose, classic: (1, 4+nc+K*3, A)"),
    "yolo26-pose-e2e": ("yolo26-pose", {"nms": False}, "YOLO26 pose, end-to-end: (1, 300, 6+K*3)"),
    "yolo11-cls": ("yolo11-cls", {}, "YOLO11 classify: (1, nc) probabilities"),
    "yolo26-sem": ("yolo26-sem", {}, "YOLO26 semantic segmentation: a class map"),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def onnx_view(path: Path) -> dict:
    """Inputs, outputs (name, shape, type) and metadata as ONNX Runtime reports them."""
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    io = lambda xs: [{"name": x.name, "shape": list(x.shape), "type": x.type} for x in xs]
    return {"inputs": io(s.get_inputs()), "outputs": io(s.get_outputs()),
            "metadata": dict(s.get_modelmeta().custom_metadata_map)}


def rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE: column-major runs, starting with a (possibly empty) run of 0s."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def record(result: object, frame: dict, out: Path, name: str) -> dict:
    """Ultralytics' prediction on one frame as plain JSON (source pixels)."""
    r = result
    rec: dict = {"frame": frame["name"]}
    if getattr(r, "boxes", None) is not None:
        rec["boxes"] = [[round(v, 4) for v in b] for b in r.boxes.xyxy.tolist()]
        rec["scores"] = [round(v, 6) for v in r.boxes.conf.tolist()]
        rec["classes"] = [int(c) for c in r.boxes.cls.tolist()]
    if getattr(r, "masks", None) is not None:
        rec["masks"] = [rle(m) for m in r.masks.data.cpu().numpy() > 0.5]
    if getattr(r, "keypoints", None) is not None:
        rec["keypoints"] = [[[round(v, 4) for v in p] for p in obj] for obj in r.keypoints.data.tolist()]
    if getattr(r, "probs", None) is not None:
        rec["top5"] = {"ids": [int(i) for i in r.probs.top5], "probs": [round(float(p), 6) for p in r.probs.top5conf]}
        rec["probs"] = [round(float(p), 6) for p in r.probs.data.tolist()]
    if getattr(r, "semantic_mask", None) is not None:
        import cv2

        file = f"{name}.{frame['name']}.classmap.png"
        cv2.imwrite(str(out / file), r.semantic_mask.data.cpu().numpy().astype(np.uint8))
        rec["class_map"] = file
    return rec


def predict(onnx_path: Path, task: str, frames: list[dict], out: Path, name: str, imgsz: int) -> dict:
    """Ultralytics' own predictor on the exported ONNX file, frame by frame."""
    from ultralytics import YOLO

    model = YOLO(str(onnx_path), task=task)
    settings = {**SETTINGS, "imgsz": imgsz}
    records = []
    for frame in frames:
        (result,) = model.predict(str(out / frame["file"]), verbose=False, device="cpu", **settings)
        records.append(record(result, frame, out, name))
    return {"model": onnx_path.name, "task": task, "settings": settings, "frames": records}


def export(model: object, name: str, kwargs: dict, imgsz: int, out: Path) -> Path:
    """Ultralytics' exporter, defaults apart from ``kwargs``; the file lands in ``out``."""
    path = Path(model.export(format="onnx", imgsz=imgsz, device="cpu", **kwargs))  # type: ignore[attr-defined]
    target = out / f"{name}.onnx"
    shutil.copyfile(path, target)
    path.unlink()
    return target


def check_bundled(frames: list[dict], out: Path) -> dict:
    """``YOLO(path).predict(frame)`` on each bundled model, as a user comparing tools would.

    Tried twice: plainly (Ultralytics letterboxes a 16:9 frame to 384x640: the bundled files
    declare height and width symbolic, as its own dynamic exports do) and with ``rect=False``
    (the square ``imgsz`` of the metadata).
    """
    from ultralytics import YOLO

    zoo = Path(__file__).resolve().parents[1] / "pipeline" / "zoo"
    outcome: dict = {}
    for path in sorted(zoo.glob("*.onnx")):
        outcome[path.name] = {}
        for label, extra in (("plain", {}), ("rect_false", {"rect": False})):
            try:
                task = "pose" if path.stem.endswith("pose") else "segment"
                (r,) = YOLO(str(path), task=task).predict(str(out / frames[0]["file"]), verbose=False, **extra)
                got = {"loads": True, "detections": len(r.boxes), "masks": 0 if r.masks is None else len(r.masks),
                       **({"keypoints": 0 if r.keypoints is None else len(r.keypoints)} if task == "pose" else {})}
            except Exception as e:  # noqa: BLE001 - recorded, not raised: the outcome is the finding
                got = {"loads": False, "error": f"{type(e).__name__}: {e}"[:300]}
            outcome[path.name][label] = got
            log.info("bundled %s in Ultralytics (%s): %s", path.name, label, got)
    return outcome


def versions() -> dict:
    import onnx
    import onnxruntime
    import torch
    import ultralytics

    return {"ultralytics": ultralytics.__version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def build(out: Path, work: Path, only: set[str], epochs: int, images: int) -> dict:
    """Train, export and predict every fixture model; returns the manifest."""
    shim = cpu_nms_op()
    frames = data.write_frames(out / "frames")
    trained: dict[str, object] = {}
    models = []
    for name, (key, kwargs, what) in EXPORTS.items():
        if only and name not in only:
            continue
        if key not in trained:
            trained[key] = make_model(key, work, epochs, images)
        imgsz = imgsz_of(key)
        onnx_path = export(trained[key], name, kwargs, imgsz, out)
        view = onnx_view(onnx_path)
        task = view["metadata"]["task"]
        preds = predict(onnx_path, task, frames, out, name, imgsz)
        (out / f"{name}.json").write_text(json.dumps(preds, separators=(",", ":")) + "\n")
        models.append({"name": name, "file": onnx_path.name, "predictions": f"{name}.json", "task": task,
                       "what": what, "yaml": TRAIN[key][0], "scale": SCALE, "export_args": kwargs,
                       "bytes": onnx_path.stat().st_size, "sha256": sha256(onnx_path), **view})
        log.info("%s: %s -> %s", name, [i["shape"] for i in view["inputs"]], [o["shape"] for o in view["outputs"]])
    for f in frames:
        f["sha256"] = sha256(out / f["file"])
    nms = "torchvision::nms op defined with ultralytics TorchNMS.nms (CPU torch)" if shim else "torchvision"
    return {"format": "vidpipe.ultralytics-fixtures/1", "versions": {**versions(), "nms": nms}, "frames": frames,
            "training": {"epochs": epochs, "images": images, "data": "training/ultralytics_data.py"},
            "models": models, "bundled_in_ultralytics": check_bundled(frames, out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/ultralytics"))
    parser.add_argument("--only", nargs="*", default=[], help="fixture names (default: all; the manifest then lists only these)")
    parser.add_argument("--epochs", type=int, default=0, help="train each model this long first (see above)")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folder (datasets, runs) here")
    parser.add_argument("--bundled-only", action="store_true",
                        help="only try the bundled models in Ultralytics again and update the manifest's record of it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.bundled_only:
        cpu_nms_op()
        manifest = json.loads((args.out / "manifest.json").read_text())
        manifest["bundled_in_ultralytics"] = check_bundled(manifest["frames"], args.out.resolve())
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        return 0
    with tempfile.TemporaryDirectory(prefix="vidpipe-ul-") as tmp:
        work = args.keep or Path(tmp)
        manifest = build(args.out.resolve(), work.resolve(), set(args.only), args.epochs, args.images)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("wrote %d models to %s", len(manifest["models"]), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
