"""Test fixtures from the real Ultralytics exporter and predictor (dev tool; ``make ultralytics-fixtures``).

ultralytics, like torch, is never a dependency of vidpipe nor imported by the package or its
tests: this script runs in a throwaway virtualenv (``.venv-ultralytics/``, see the Makefile)
and writes ``tests/fixtures/ultralytics/``: small ONNX files exported by Ultralytics' own
exporter for every output layout vidpipe decodes, a few fixed frames, and Ultralytics' own
predictions on those frames, which the tests compare vidpipe against without ultralytics.

Models: Ultralytics' own model YAMLs (``yolo26-seg.yaml``, ``yolo11-pose.yaml``, ...) with
their width/depth multiples scaled down (one scale ``t``: depth 0.33, width 0.0625) and 4 DFL
bins instead of 16 (see ``tiny_yaml``), at ``imgsz`` 160 (classification 64), so each ONNX
file is 0.1-0.75 MB. Weights are Ultralytics' own initialisation under ``torch.manual_seed(0)``.

Why untrained weights, with very low thresholds: parity needs the same raw outputs decoded
the same way, not accurate models, but it needs predictions to compare. A short training
was tried (``--epochs``; AdamW, 48 synthetic frames with exact labels from
:mod:`training.ultralytics_data`): within the few CPU-minutes this tool may take, scores of
these tiny networks stay at the head's prior (~0.004) and nothing passes a usual threshold,
so it buys nothing over the initial weights. Instead the predictor (and the ``nms=True``
graph) run with ``conf`` 1e-4 and ``max_det`` 30: every frame then has 30 detections with
distinct scores (different in the 4th-6th significant digit, far above float32 noise: the
same ONNX output gives the same ranking), boxes and masks that vary across the frame, and
keypoints, class rankings and class maps that depend on the pixels. What parity checks is
preprocessing, decoding, NMS, mask and keypoint scaling, which these exercise fully; the
synthetic labels matter only for accuracy, which is not measured here.

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

log = logging.getLogger("vidpipe.fixtures")

IMGSZ = 160
LR0 = 0.005  # AdamW; the "auto" choice is tuned for long runs and barely moves in a few hundred steps
SCALE = [0.33, 0.0625, 128]  # depth, width, max channels of the one scale "t"
SETTINGS = {"conf": 0.0001, "iou": 0.7, "imgsz": IMGSZ, "max_det": 30, "retina_masks": True, "agnostic_nms": False}

# Trained once each: key -> (Ultralytics model YAML, dataset kind).
TRAIN = {
    "yolo26-seg": ("yolo26-seg.yaml", "segment"),
    "yolo11-seg": ("yolo11-seg.yaml", "segment"),
    "yolo26-det": ("yolo26.yaml", "detect"),
    "yolo11-det": ("yolo11.yaml", "detect"),
    "yolo11-pose": ("yolo11-pose.yaml", "pose"),
    "yolo26-pose": ("yolo26-pose.yaml", "pose"),
    "yolo11-cls": ("yolo11-cls.yaml", "classify"),
    "yolo26-sem": ("yolo26-sem.yaml", "semantic"),
}

# Per-YAML changes: YOLO26 pose with K = 5 (YOLO11 pose keeps COCO's 17: both kinds of K are
# covered, and 17 keypoints in the end-to-end head would take the file over 1 MB); the
# semantic model wider, as the exporter refuses files under 0.1 MB.
OVERRIDES: dict[str, dict] = {
    "yolo26-pose.yaml": {"kpt_shape": [5, 3]},
    "yolo26-sem.yaml": {"scales": {"t": [0.33, 0.125, 128]}},
}

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


def cpu_nms_op() -> bool:
    """Give torchvision's ``nms`` op a CPU kernel when its compiled ops cannot load.

    The torchvision wheel on PyPI links against the CUDA build of torch; beside the CPU build
    its ``_C.so`` does not load, ``torchvision::nms`` does not exist and torchvision itself
    fails to import. Defining the op first (before anything imports torchvision), with
    Ultralytics' own exact greedy NMS (``TorchNMS.nms``, what Ultralytics runs without
    torchvision), keeps everything else as it is: the predictor calls the op as usual, and the
    ``nms=True`` export traces it as one opaque op that torchvision's ONNX symbolic turns into
    ``NonMaxSuppression``, as in any export. Returns whether the shim was needed.
    """
    import importlib.util

    import torch

    spec = importlib.util.find_spec("torchvision")
    compiled = Path(spec.origin).parent / "_C.so" if spec and spec.origin else None
    if torch.version.cuda is not None or compiled is None or b"libc10_cuda" not in compiled.read_bytes():
        return False

    def nms(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
        from ultralytics.utils.nms import TorchNMS

        return TorchNMS.nms(dets, scores, iou_threshold)

    global _NMS_LIB  # the library must outlive this call
    _NMS_LIB = torch.library.Library("torchvision", "DEF")
    _NMS_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _NMS_LIB.impl("nms", nms, "CompositeExplicitAutograd")
    # torchvision registers a fake kernel for qnms too at import: it must exist (never called).
    _NMS_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True  # its ops check; nms is the only one used
    return True


_NMS_LIB = None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_yaml(name: str, work: Path, nc: int | None) -> Path:
    """Ultralytics' model YAML ``name`` with the one small scale ``t`` (and ``nc`` classes)."""
    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    cfg = yaml_model_load(name)
    cfg.pop("scale", None)
    cfg.pop("yaml_file", None)
    cfg["scales"] = {"t": SCALE}
    if nc is not None:
        cfg["nc"] = nc
    cfg.update(OVERRIDES.get(name, {}))
    # DFL bins: 16 by default (YOLOv8/10/11) makes the box branch alone ~150k parameters at
    # any width; 4 bins still span 3 strides (96 px at stride 32), more than a 160 input
    # needs. The exported output is the same decoded layout either way.
    cfg["reg_max"] = min(int(cfg.get("reg_max", 16)), 4)
    path = work / "yaml" / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# Classes of the untrained models by dataset kind (the names match the synthetic world's, so a
# short training with --epochs gives the same metadata); pose: one class, the YAML's keypoints.
NAMES = {"detect": data.CLASS_NAMES, "segment": data.CLASS_NAMES, "pose": ("shape",), "classify": data.CLS_NAMES,
         "semantic": data.SEM_NAMES}


def make_model(key: str, work: Path, epochs: int, images: int) -> object:
    """The tiny model from its YAML, seeded; trained on the synthetic world if ``epochs``."""
    import torch
    from ultralytics import YOLO

    yaml_name, kind = TRAIN[key]
    names = NAMES[kind]
    torch.manual_seed(0)
    model = YOLO(str(tiny_yaml(yaml_name, work, None if names is None else len(names))))
    if names is not None:
        model.model.names = dict(enumerate(names))  # type: ignore[union-attr]
    if not epochs:
        he_init(model.model, imgsz_of(key))  # type: ignore[union-attr]
        return model
    if kind == "classify":
        dataset = data.write_classify_dataset(work / "data" / "classify", images)
    else:
        dataset = data.write_dataset(work / "data" / kind, kind, images)
    model.train(data=str(dataset), epochs=epochs, imgsz=imgsz_of(key), batch=8, workers=0, device="cpu",
                plots=False, val=False, amp=False, optimizer="AdamW", lr0=LR0, seed=0, deterministic=True,
                warmup_epochs=0, mosaic=0.0, project=str(work / "runs"), name=key, exist_ok=True, verbose=False)
    return model


def he_init(net: object, imgsz: int) -> None:
    """He-normal conv and linear weights (seeded), then BatchNorm statistics measured on
    synthetic frames; the heads' biases (their score priors) kept.

    With Ultralytics' default initialisation a network this narrow maps every image to the
    same output (activations shrink layer by layer to nothing): identical scores, the same
    class ranking for every frame. Re-initialised and with each BatchNorm normalising what it
    actually sees, activations stay at unit scale through the network, so outputs depend on
    the pixels and scores spread over orders of magnitude.
    """
    import cv2
    import torch

    for name, m in net.named_modules():  # type: ignore[attr-defined]
        if ".dfl" in name:  # fixed weights (the bin values 0..reg_max-1), not learned
            continue
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration frames
    frames = [data.render(data.TRAIN_SEED_BASE + i, 320, 180, 0)[0] for i in range(16)]
    x = np.stack([cv2.resize(f, (imgsz, imgsz))[..., ::-1] for f in frames]).transpose(0, 3, 1, 2)
    net.train()  # type: ignore[attr-defined]
    with torch.no_grad():
        for batch in torch.from_numpy(np.ascontiguousarray(x)).float().div(255).split(4):
            net(batch)  # type: ignore[operator]
    net.eval()  # type: ignore[attr-defined]
    # The detection heads' prediction convs (the only convs with a bias) a tenth as strong:
    # logits of a few units around the priors, so scores spread without saturating at 0 or 1.
    for m in net.modules():  # type: ignore[attr-defined]
        if isinstance(m, torch.nn.Conv2d) and m.bias is not None and m.weight.requires_grad:
            m.weight.data.mul_(0.1)


def imgsz_of(key: str) -> int:
    return 64 if TRAIN[key][1] == "classify" else IMGSZ


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

    Tried twice: plainly, and with ``rect=False``. Ultralytics takes any ONNX file with a
    symbolic batch axis for one with symbolic height and width too and letterboxes a single
    frame to the smallest rectangle (384x640 for 16:9), which the bundled files' fixed 640x640
    input refuses; ``rect=False`` letterboxes to the square ``imgsz`` of the metadata.
    """
    from ultralytics import YOLO

    zoo = Path(__file__).resolve().parents[1] / "pipeline" / "zoo"
    outcome: dict = {}
    for path in sorted(zoo.glob("*.onnx")):
        outcome[path.name] = {}
        for label, extra in (("plain", {}), ("rect_false", {"rect": False})):
            try:
                (r,) = YOLO(str(path), task="segment").predict(str(out / frames[0]["file"]), verbose=False, **extra)
                got = {"loads": True, "detections": len(r.boxes), "masks": 0 if r.masks is None else len(r.masks)}
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
    parser.add_argument("--only", nargs="*", default=[], help="fixture names (default: all)")
    parser.add_argument("--epochs", type=int, default=0, help="train each model this long first (see above)")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folder (datasets, runs) here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vidpipe-ul-") as tmp:
        work = args.keep or Path(tmp)
        manifest = build(args.out.resolve(), work.resolve(), set(args.only), args.epochs, args.images)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("wrote %d models to %s", len(manifest["models"]), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
