"""Train and export the bundled synthetic-shapes pose model (dev tool, extra ``[train]``).

    pip install -e '.[train]'      # torch==2.13.0 (CPU build) and onnx; dev only
    python -m training.train_pose --out pipeline/zoo --seed 0                    # stage 1
    python -m training.train_pose --out pipeline/zoo --seed 1 --init .data/zoo/shapes-pose.pt \
        --iterations 2800 --lr 7e-4 --checkpoint .data/zoo/shapes-pose-stage2.pt   # stage 2 (shipped)

Five keypoints per shape (sources/keypoints.py: centre, top, right, bottom, left, exact
from the geometry). The network (training/pose_net.py) starts from the bundled
segmentation model's weights (``--init``, read from its ONNX file) and learns the keypoint
head while the box and class heads keep training as in training/train.py: the same data
recipe (training seeds 1000+, letterboxed to 640, random crops with flips, brightness and
blur; a flip swaps left/right or top/bottom keypoints), the same task-aligned assignment.
Keypoint loss on the positive anchors: L1 scaled by the object's size plus 1 − OKS
(σ 0.05, as the evaluation), on every labelled keypoint (hidden ones too: their place is
known exactly); BCE on visibility (shown = 1; hidden or outside the crop = 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from sources.keypoints import FLIP_X, FLIP_Y, KEYPOINT_NAMES
from sources.scene import CLASS_NAMES
from training.net import flatten_outputs
from training.onnx_metadata import dynamic_axes
from training.pose_net import (
    ExportPose,
    YoloPose,
    anchor_grid,
    decode_keypoints,
    freeze_batchnorm,
    is_pose_onnx,
    load_pose_onnx,
    load_seg_onnx,
)
from training.train import (
    IMGSZ,
    assign,
    augmented_crop,
    finalize_onnx,
    giou,
    instances,
    letterboxed_sample,
    to_tensor,
    training_frames,
)

log = logging.getLogger("vidpipe.train")

K = len(KEYPOINT_NAMES)
OKS_SIGMA = 0.05


# -- data -------------------------------------------------------------------------------------
def build_dataset(num_clips: int, frames_per_clip: int, every: int, seed: int) -> list[dict]:
    """Letterboxed 640 frames, an instance map (index+1 into ``classes``) and keypoints (n, K, 3)."""
    samples = []
    for image, labels in training_frames(num_clips, frames_per_clip, every, seed):
        sample, r, top, left = letterboxed_sample(image, labels.objects)
        kpts = np.zeros((len(labels.objects), K, 3), np.float32)
        for k, obj in enumerate(labels.objects):
            assert obj.keypoints is not None
            kpts[k] = obj.keypoints
        # Source pixel centres map through the letterbox as the runtime maps them back.
        kpts[:, :, 0] = kpts[:, :, 0] * r + left
        kpts[:, :, 1] = kpts[:, :, 1] * r + top
        samples.append({**sample, "kpts": kpts})
    return samples


def _crop_keypoints(kpts: np.ndarray, x: int, y: int, size: int, crop: int, flip_x: bool, flip_y: bool) -> np.ndarray:
    """Keypoints (K, 3) of the 640 image in a crop's pixels; outside the crop: v = 0."""
    out = kpts.copy()
    out[:, :2] = (out[:, :2] - (x, y)) * (crop / size)
    if flip_x:
        out = out[list(FLIP_X)]
        out[:, 0] = crop - out[:, 0]
    if flip_y:
        out = out[list(FLIP_Y)]
        out[:, 1] = crop - out[:, 1]
    inside = (out[:, 0] >= 0) & (out[:, 0] < crop) & (out[:, 1] >= 0) & (out[:, 1] < crop)
    out[~inside, 2] = 0
    return out


def sample_batch(samples: list[dict], batch: int, crop: int, rng: np.random.Generator):
    """Random crops with augmentation: images (B,3,crop,crop) and per image boxes, classes, keypoints."""
    images = np.empty((batch, crop, crop, 3), np.uint8)
    targets = []
    for b in range(batch):
        s = samples[int(rng.integers(len(samples)))]
        images[b], own, (x, y, size, fx, fy) = augmented_crop(s, crop, rng)
        boxes, classes, kpts, areas = [], [], [], []
        for i, mask, box in instances(own):
            boxes.append(box)
            classes.append(s["classes"][i])
            kpts.append(_crop_keypoints(s["kpts"][i], x, y, size, crop, fx, fy))
            areas.append(mask.sum())
        targets.append((np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64),
                        np.array(kpts, np.float32).reshape(-1, K, 3), np.array(areas, np.float32)))
    return to_tensor(images), targets


# -- loss -------------------------------------------------------------------------------------
def keypoint_loss(pred: torch.Tensor, gt: torch.Tensor, areas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per positive anchor: location loss (size-scaled L1 + 1 − OKS, labelled points) and visibility BCE.
    ``pred`` (P, K, 3) x, y, logit; ``gt`` (P, K, 3) x, y, v; ``areas`` (P,) the objects' visible
    mask areas: the scale OKS is scored with (COCO's ``area``), tighter than the box's for a triangle."""
    area = areas.clamp_min(64.0)[:, None]
    labelled = (gt[..., 2] > 0).float()
    d2 = ((pred[..., :2] - gt[..., :2]) ** 2).sum(-1)
    oks = torch.exp(-d2 / (2 * area * (2 * OKS_SIGMA) ** 2))
    l1 = (pred[..., :2] - gt[..., :2]).abs().sum(-1) / area.sqrt()
    n = labelled.sum(-1).clamp_min(1.0)
    loc = ((l1 + (1 - oks)) * labelled).sum(-1) / n
    vis = F.binary_cross_entropy_with_logits(pred[..., 2], (gt[..., 2] > 1.5).float(), reduction="none").mean(-1)
    return loc, vis


def compute_loss(net: YoloPose, x: torch.Tensor, targets, topk: int = 10):
    outs = net(x)
    boxes, cls_logits, raw_kpts, _ = flatten_outputs(outs, net.num_classes)
    centres, strides = anchor_grid([(o.shape[2], o.shape[3]) for o in outs], x.device)
    kpts = decode_keypoints(raw_kpts, centres, strides)
    cls_target = torch.zeros_like(cls_logits)
    box_losses, loc_losses, vis_losses, norm = [], [], [], 0.0
    scores = cls_logits.detach().sigmoid()
    for b in range(x.shape[0]):
        gt_boxes_np, gt_cls_np, gt_kpts_np, gt_areas_np = targets[b]
        if len(gt_cls_np) == 0:
            continue
        gt_boxes, gt_cls = torch.from_numpy(gt_boxes_np), torch.from_numpy(gt_cls_np)
        g_idx, a_idx, norm_al = assign(scores[b], boxes[b].detach(), gt_boxes, gt_cls, centres, strides, topk)
        if g_idx.numel() == 0:
            continue
        cls_target[b, a_idx, gt_cls[g_idx]] = norm_al
        weight = norm_al.clamp_min(0.05)
        box_losses.append(((1 - giou(boxes[b, a_idx], gt_boxes[g_idx])) * weight).sum())
        loc, vis = keypoint_loss(kpts[b, a_idx], torch.from_numpy(gt_kpts_np)[g_idx], torch.from_numpy(gt_areas_np)[g_idx])
        loc_losses.append((loc * weight).sum())
        vis_losses.append((vis * weight).sum())
        norm += float(weight.sum())
    norm = max(norm, 1.0)
    cls_loss = F.binary_cross_entropy_with_logits(cls_logits, cls_target, reduction="sum") / norm
    zero = cls_loss * 0
    box_loss = torch.stack(box_losses).sum() / norm if box_losses else zero
    loc_loss = torch.stack(loc_losses).sum() / norm if loc_losses else zero
    vis_loss = torch.stack(vis_losses).sum() / norm if vis_losses else zero
    total = 1.0 * cls_loss + 5.0 * box_loss + 8.0 * loc_loss + 1.0 * vis_loss
    return total, {"cls": cls_loss.item(), "box": box_loss.item(), "kpt": loc_loss.item(), "vis": vis_loss.item()}


# -- export -----------------------------------------------------------------------------------
def export_onnx(net: YoloPose, path: Path) -> None:
    """The classic YOLOv8-pose layout with Ultralytics' metadata (``kpt_shape`` [K, 3])."""
    wrapper = ExportPose(net).eval()
    torch.onnx.export(wrapper, (torch.zeros(1, 3, IMGSZ, IMGSZ),), str(path), dynamo=False, opset_version=17,
                      input_names=["images"], output_names=["output0"],
                      dynamic_axes={k: v for k, v in dynamic_axes("yolov8-pose").items() if k != "output1"})
    finalize_onnx(path, "yolov8-pose")


def _learning_rate(it: int, iterations: int, base: float, warmup: int) -> float:
    return base * min(1.0, (it + 1) / warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * it / iterations)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("pipeline/zoo"))
    parser.add_argument("--init", type=Path, default=Path("pipeline/zoo/shapes-yolov8seg.onnx"),
                        help="start from this bundled seg model's weights, or a checkpoint (.pt) of this script ('none': from scratch)")
    parser.add_argument("--iterations", type=int, default=3000, help="about 15 min on 2 CPU cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--frames-per-clip", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--time-limit", type=float, default=0.0,
                        help="minutes: stop early (and say so) on a machine too busy for the schedule; 0: none")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", type=Path, default=Path(".data/zoo/shapes-pose.pt"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.monotonic()
    net = YoloPose(len(CLASS_NAMES), K)
    if args.init.suffix == ".pt":  # a second stage: this script's own checkpoint
        net.load_state_dict(torch.load(args.init, weights_only=True))
        log.info("init from %s", args.init)
    elif is_pose_onnx(args.init):  # a further stage from a pose model this script exported
        log.info("init from %s: %d convolutions", args.init, load_pose_onnx(net, args.init))
    elif str(args.init) != "none":
        log.info("init from %s: %d convolutions", args.init, load_seg_onnx(net, args.init))
    samples = build_dataset(args.clips, args.frames_per_clip, every=5, seed=args.seed)
    log.info("dataset: %d frames in %.0f s", len(samples), time.monotonic() - t0)
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}], lr=args.lr)
    history: list[float] = []
    for it in range(args.iterations):
        if args.time_limit and time.monotonic() - t0 > args.time_limit * 60:
            log.warning("time limit: stopped after %d of %d iterations", it, args.iterations)
            break
        for group in opt.param_groups:
            group["lr"] = _learning_rate(it, args.iterations, args.lr, 50)
        x, targets = sample_batch(samples, args.batch, args.crop, rng)
        net.train()
        if str(args.init) != "none":
            freeze_batchnorm(net)  # the folded weights carry no batch statistics
        loss, parts = compute_loss(net, x, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        history.append(loss.item())
        if it % 50 == 0 or it == args.iterations - 1:
            log.info("it %d  %.0f s  loss %.3f  %s", it, time.monotonic() - t0, np.mean(history[-50:]),
                     json.dumps({k: round(v, 3) for k, v in parts.items()}))
    net.eval()
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    export_onnx(net, args.out / "shapes-yolov8pose.onnx")
    log.info("trained %d iterations in %.1f min; exported to %s", args.iterations, (time.monotonic() - t0) / 60, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
