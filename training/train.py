"""Train and export the bundled synthetic-shapes YOLO-seg model (dev tool, extra ``[train]``).

    pip install torch==2.13.0 onnx        # CPU build; torch is never a runtime dependency
    python -m training.train --out pipeline/zoo --iterations 3000 --seed 0

Data: frames of :class:`sources.scene.SyntheticScene` with training seeds 1000+ (the
held-out evaluation clips use seeds below 1000), rendered at 1280×720 and letterboxed to
640 like the runtime does; training runs on random 320-pixel crops of those letterboxed
images (scale jitter, flips, blur, brightness), which the fully convolutional network
generalises from to full 640 inputs at a quarter of the cost.

Targets: task-aligned assignment (as in TOOD / YOLOv8): for every object, the 10 anchors
whose alignment ``score^1 × IoU^6`` is highest among those inside the box (or near the
centre of tiny objects) become positives with soft class targets, so several cells learn
each object and duplicates are suppressed by the classification loss, not only by NMS.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from sources.scene import CLASS_NAMES
from sources.worlds import make_scene
from training.net import ExportYolov5, ExportYolov8, YoloSeg, anchor_grid, flatten_outputs
from training.onnx_metadata import declare_dynamic_axes, dynamic_axes, ultralytics_metadata, write_metadata
from training.pose_net import copy_folded_convs, freeze_batchnorm

log = logging.getLogger("vidpipe.train")

IMGSZ = 640
CROP = 320
PAD_VALUE = 114
TRAIN_SEED_BASE = 1000


# -- data -------------------------------------------------------------------------------------
def letterboxed_sample(image: np.ndarray, objects: list) -> tuple[dict, float, int, int]:
    """A frame letterboxed to 640 as at run time, with its instance map (index + 1 into
    ``classes``) per pixel; and the scale and offsets that map source pixels into it."""
    h, w = image.shape[:2]
    r = IMGSZ / max(h, w)
    nh, nw = round(h * r), round(w * r)
    top, left = (IMGSZ - nh) // 2, (IMGSZ - nw) // 2
    canvas = np.full((IMGSZ, IMGSZ, 3), PAD_VALUE, np.uint8)
    canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    owner = np.zeros((h, w), np.uint8)
    for k, obj in enumerate(objects):
        x0, y0, x1, y1 = obj.xyxy
        owner[y0:y1, x0:x1][obj.mask] = k + 1
    owner_lb = np.zeros((IMGSZ, IMGSZ), np.uint8)
    owner_lb[top : top + nh, left : left + nw] = cv2.resize(owner, (nw, nh), interpolation=cv2.INTER_NEAREST)
    sample = {"image": canvas, "owner": owner_lb, "classes": np.array([o.class_id for o in objects], np.int64)}
    return sample, r, top, left


def training_frames(num_clips: int, frames_per_clip: int, every: int, seed: int,
                    world: str = "default") -> Iterator[tuple[np.ndarray, Any]]:
    """(image, labels) of every ``every``-th frame of the training clips of ``seed``
    (scene seeds from TRAIN_SEED_BASE: never the evaluation clips') in ``world``
    (sources/worlds.py; a crowded clip's seeds follow the default clips' so they differ)."""
    offset = 500 if world != "default" else 0
    for clip in range(num_clips):
        scene = make_scene(TRAIN_SEED_BASE + seed * 1000 + offset + clip, world)
        for t in range(frames_per_clip * every):
            image, labels = scene.step()
            if t % every == 0:
                yield image, labels


def build_dataset(num_clips: int, frames_per_clip: int, every: int, seed: int, crowded_clips: int = 0) -> list[dict]:
    """Letterboxed 640 frames with an instance map (index into ``classes``) per pixel:
    ``num_clips`` of the default world, ``crowded_clips`` of the crowded one (occluders)."""
    # H.264 softens edges a little; a light blur at training time covers that.
    return [letterboxed_sample(image, labels.objects)[0]
            for world, clips in (("default", num_clips), ("crowded", crowded_clips))
            for image, labels in training_frames(clips, frames_per_clip, every, seed, world)]


def augmented_crop(sample: dict, crop: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A random square of the 640 sample resized to ``crop``, flipped, with brightness,
    contrast and blur: the image (uint8), its instance map, and (x, y, size, flip_x, flip_y)
    to map labels into it."""
    size = int(rng.integers(int(crop * 0.75), int(crop * 1.3)))
    y = int(rng.integers(0, IMGSZ - size + 1))
    x = int(rng.integers(0, IMGSZ - size + 1))
    img = cv2.resize(sample["image"][y : y + size, x : x + size], (crop, crop), interpolation=cv2.INTER_LINEAR)
    own = cv2.resize(sample["owner"][y : y + size, x : x + size], (crop, crop), interpolation=cv2.INTER_NEAREST)
    fx, fy = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    if fx:
        img, own = img[:, ::-1], own[:, ::-1]
    if fy:
        img, own = img[::-1], own[::-1]
    img = img.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    return np.clip(img, 0, 255).astype(np.uint8), own, (x, y, size, fx, fy)


def instances(own: np.ndarray):
    """Each instance of a crop's map with at least 8 pixels: (index into the sample's
    objects, its mask, its xyxy box)."""
    ids, counts = np.unique(own, return_counts=True)
    for k, n in zip(ids, counts):
        if k == 0 or n < 8:
            continue
        m = own == k
        ys, xs = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        yield int(k) - 1, m, [xs[0], ys[0], xs[-1] + 1, ys[-1] + 1]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 BGR → (B, 3, H, W) float RGB in [0, 1], the network's input."""
    return torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0


def sample_batch(samples: list[dict], batch: int, rng: np.random.Generator):
    """Random crops with augmentation: images (B,3,CROP,CROP), boxes/classes/masks per image."""
    images = np.empty((batch, CROP, CROP, 3), np.uint8)
    targets = []
    for b in range(batch):
        s = samples[int(rng.integers(len(samples)))]
        images[b], own, _ = augmented_crop(s, CROP, rng)
        boxes, classes, masks = [], [], []
        for i, m, box in instances(own):
            boxes.append(box)
            classes.append(s["classes"][i])
            masks.append(m)
        if masks:
            mk = np.stack(masks).astype(np.float32).reshape(len(masks), CROP // 4, 4, CROP // 4, 4).mean((2, 4))
        else:
            mk = np.zeros((0, CROP // 4, CROP // 4), np.float32)
        targets.append((np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64), mk))
    return to_tensor(images), targets


# -- loss -------------------------------------------------------------------------------------
def box_iou_pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes a (..., 4) and b (..., 4), elementwise with broadcasting."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp_min(0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp_min(0).prod(-1)
    return inter / (area_a + area_b - inter + 1e-7)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    iou = box_iou_pairwise(a, b)
    lt = torch.minimum(a[..., :2], b[..., :2])
    rb = torch.maximum(a[..., 2:], b[..., 2:])
    hull = (rb - lt).clamp_min(0).prod(-1) + 1e-7
    area_a = (a[..., 2:] - a[..., :2]).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).prod(-1)
    inter = iou * (area_a + area_b) / (1 + iou)
    union = area_a + area_b - inter
    return iou - (hull - union) / hull


def assign(scores: torch.Tensor, pb: torch.Tensor, gt_boxes: torch.Tensor, gt_cls: torch.Tensor,
           centres: torch.Tensor, strides: torch.Tensor, topk: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Task-aligned assignment of one image: (object index, anchor index, soft class target)
    of each positive anchor, from class scores (A, nc) and predicted boxes (A, 4)."""
    A = pb.shape[0]
    iou = box_iou_pairwise(gt_boxes[:, None, :], pb[None, :, :])  # G, A
    inside = (
        (centres[None, :, 0] > gt_boxes[:, None, 0]) & (centres[None, :, 0] < gt_boxes[:, None, 2])
        & (centres[None, :, 1] > gt_boxes[:, None, 1]) & (centres[None, :, 1] < gt_boxes[:, None, 3])
    )
    gc = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2
    near = ((centres[None] - gc[:, None]).abs() < strides[None, :, None] * 0.75).all(-1)
    cand = inside | near
    align = scores[:, gt_cls].T.pow(1.0) * iou.pow(6.0)  # G, A
    align = torch.where(cand, align + 1e-9, torch.zeros_like(align))
    k = min(topk, A)
    top_vals, top_idx = align.topk(k, dim=1)
    pos = torch.zeros_like(cand)
    pos.scatter_(1, top_idx, top_vals > 0)
    # Anchor claimed by several objects: the one it overlaps most wins.
    multi = pos.sum(0) > 1
    if multi.any():
        best = torch.where(pos, iou, torch.full_like(iou, -1)).argmax(0)
        pos[:, multi] = False
        pos[best[multi], multi.nonzero().squeeze(1)] = True
    g_idx, a_idx = pos.nonzero(as_tuple=True)
    al = align * pos
    max_al = al.amax(1, keepdim=True).clamp_min(1e-9)
    max_iou = (iou * pos).amax(1, keepdim=True)
    norm_al = (al / max_al * max_iou)[g_idx, a_idx]  # soft class targets
    return g_idx, a_idx, norm_al


def compute_loss(net: YoloSeg, x: torch.Tensor, targets, topk: int = 10):
    outs, protos = net(x)
    boxes, cls_logits, coefs, _ = flatten_outputs(outs, net.num_classes)
    B, A, nc = cls_logits.shape
    sizes = [(o.shape[2], o.shape[3]) for o in outs]
    centres, strides = anchor_grid(sizes, x.device)
    cls_target = torch.zeros_like(cls_logits)
    box_losses, mask_losses, norm = [], [], 0.0
    scores = cls_logits.detach().sigmoid()
    for b in range(B):
        gt_boxes_np, gt_cls_np, gt_masks_np = targets[b]
        if len(gt_cls_np) == 0:
            continue
        gt_boxes = torch.from_numpy(gt_boxes_np)
        gt_cls = torch.from_numpy(gt_cls_np)
        g_idx, a_idx, norm_al = assign(scores[b], boxes[b].detach(), gt_boxes, gt_cls, centres, strides, topk)
        if g_idx.numel() == 0:
            continue
        cls_target[b, a_idx, gt_cls[g_idx]] = norm_al
        weight = norm_al.clamp_min(0.05)
        g = giou(boxes[b, a_idx], gt_boxes[g_idx])
        box_losses.append(((1 - g) * weight).sum())
        norm += float(weight.sum())
        # Masks: coefficients × prototypes, BCE inside the object's box at prototype scale.
        logits = torch.einsum("pc,chw->phw", coefs[b, a_idx], protos[b])
        gm = torch.from_numpy(gt_masks_np)[g_idx]
        ph, pw = logits.shape[1:]
        bx = gt_boxes[g_idx] / 4.0
        xs = torch.arange(pw, dtype=torch.float32) + 0.5
        ys = torch.arange(ph, dtype=torch.float32) + 0.5
        inbox = (
            (xs[None, None, :] >= bx[:, 0, None, None] - 0.5) & (xs[None, None, :] <= bx[:, 2, None, None] + 0.5)
            & (ys[None, :, None] >= bx[:, 1, None, None] - 0.5) & (ys[None, :, None] <= bx[:, 3, None, None] + 0.5)
        ).float()
        bce = F.binary_cross_entropy_with_logits(logits, gm, reduction="none")
        per = (bce * inbox).sum((1, 2)) / inbox.sum((1, 2)).clamp_min(1.0)
        mask_losses.append((per * weight).sum())
    norm = max(norm, 1.0)
    cls_loss = F.binary_cross_entropy_with_logits(cls_logits, cls_target, reduction="sum") / norm
    box_loss = torch.stack(box_losses).sum() / norm if box_losses else cls_loss * 0
    mask_loss = torch.stack(mask_losses).sum() / norm if mask_losses else cls_loss * 0
    total = 1.0 * cls_loss + 5.0 * box_loss + 3.0 * mask_loss
    return total, {"cls": cls_loss.item(), "box": box_loss.item(), "mask": mask_loss.item()}


# -- export -----------------------------------------------------------------------------------
def export_onnx(net: YoloSeg, path: Path, layout: str) -> None:
    wrapper = ExportYolov8(net) if layout == "yolov8-seg" else ExportYolov5(net)
    wrapper.eval()
    dummy = torch.zeros(1, 3, IMGSZ, IMGSZ)
    torch.onnx.export(
        wrapper, (dummy,), str(path), dynamo=False, opset_version=17,
        input_names=["images"], output_names=["output0", "output1"],
        dynamic_axes=dynamic_axes(layout),
    )
    finalize_onnx(path, layout)


def finalize_onnx(path: Path, layout: str) -> None:
    """Write the real output sizes (the legacy exporter leaves them symbolic with generated
    names), then name the axes that follow the input size (``declare_dynamic_axes``), and the
    metadata Ultralytics writes for a dynamic export (so that its own loader runs the file too)."""
    import onnx
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    real = [o.shape for o in session.run(None, {"images": np.zeros((1, 3, IMGSZ, IMGSZ), np.float32)})]
    del session
    model = onnx.load(str(path))
    for out, shape in zip(model.graph.output, real):
        for i, dim in enumerate(out.type.tensor_type.shape.dim):
            if i > 0:
                dim.ClearField("dim_param")
                dim.dim_value = int(shape[i])
    declare_dynamic_axes(model, layout)
    write_metadata(model, ultralytics_metadata(layout, IMGSZ))
    onnx.save(model, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("pipeline/zoo"))
    parser.add_argument("--iterations", type=int, default=3000, help="about 25 min on 2 CPU cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--frames-per-clip", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", type=Path, default=Path(".data/zoo/shapes-seg.pt"),
                        help="also save the PyTorch weights here (not shipped; for fine-tuning)")
    parser.add_argument("--init", type=Path, default=None,
                        help="fine-tune: start from this seg ONNX file (e.g. the bundled one) or checkpoint; "
                             "batch norm stays in inference mode (the folded weights carry no statistics)")
    parser.add_argument("--crowded-clips", type=int, default=0, help="clips of the crowded world (occluders) besides --clips")
    parser.add_argument("--warmup", type=int, default=150, help="iterations of linear learning-rate warm-up")
    parser.add_argument("--time-limit", type=float, default=0.0, help="minutes: stop (and export) after this long")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="stop (and export) after this many iterations, the schedule still that of --iterations "
                             "(repeats a run that a --time-limit ended)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.monotonic()
    samples = build_dataset(args.clips, args.frames_per_clip, every=5, seed=args.seed, crowded_clips=args.crowded_clips)
    log.info("dataset: %d frames in %.0f s", len(samples), time.monotonic() - t0)
    net = YoloSeg(len(CLASS_NAMES))
    if args.init is not None and args.init.suffix == ".pt":
        net.load_state_dict(torch.load(args.init, weights_only=True))
    elif args.init is not None:
        log.info("init from %s: %d convolutions", args.init, copy_folded_convs(net, ExportYolov8(net), args.init))
    decay = [p for n, p in net.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in net.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}], lr=args.lr)
    warmup = args.warmup
    history = []
    for it in range(args.iterations):
        if (args.time_limit and time.monotonic() - t0 > args.time_limit * 60) or (args.stop_after and it >= args.stop_after):
            log.warning("stopped after %d of %d iterations", it, args.iterations)
            break
        progress = it / args.iterations
        lr = args.lr * min(1.0, (it + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in opt.param_groups:
            group["lr"] = lr
        x, targets = sample_batch(samples, args.batch, rng)
        net.train()
        if args.init is not None:
            freeze_batchnorm(net)
        loss, parts = compute_loss(net, x, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        history.append(loss.item())
        if it % 50 == 0:
            parts_txt = json.dumps({k: round(v, 3) for k, v in parts.items()})
            log.info("it %d  %.0f%%  lr %.5f  loss %.3f  %s", it, 100 * progress, lr, np.mean(history[-50:]), parts_txt)
    net.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.checkpoint)
    export_onnx(net, args.out / "shapes-yolov8seg.onnx", "yolov8-seg")
    export_onnx(net, args.out / "shapes-yolov5seg.onnx", "yolov5-seg")
    log.info("trained %d iterations in %.1f min; exported to %s", len(history), (time.monotonic() - t0) / 60, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
