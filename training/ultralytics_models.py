"""The tiny Ultralytics models of the fixtures: Ultralytics' own YAMLs scaled down, their
initialisation, and a CPU kernel for torchvision's ``nms`` (dev tool beside
``training/ultralytics_fixtures.py``; runs in its throwaway virtualenv).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training import ultralytics_data as data

IMGSZ = 160
LR0 = 0.005  # AdamW; the "auto" choice is tuned for long runs and barely moves in a few hundred steps
SCALE = [0.33, 0.0625, 128]  # depth, width, max channels of the one scale "t"

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
