"""The pose variant of vidpipe's small YOLO network (training tool only: imports torch).

The backbone, pyramid, box and class heads of :class:`training.net.YoloSeg`; instead of
mask coefficients and prototypes, a keypoint head per level predicting, for each of K
keypoints, an offset from the anchor centre in units of twice the stride (as YOLOv8-pose)
and a visibility logit. :class:`ExportPose` writes the classic YOLOv8/11-pose layout
``(B, 4+nc+K*3, A)``: xywh and keypoint x, y in input pixels, class scores and keypoint
visibilities as probabilities (sigmoid), as Ultralytics exports them.

:func:`load_seg_onnx` starts the network from the bundled segmentation model's weights
(read from its ONNX file, where batch norm is folded into the convolutions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.net import ConvBNSiLU, ExportYolov8, YoloSeg, anchor_grid


class YoloPose(YoloSeg):
    """Returns raw head maps per level ``(B, 4+nc+K*3, h, w)`` (training form)."""

    def __init__(self, num_classes: int, num_keypoints: int = 5) -> None:
        super().__init__(num_classes)
        self.num_keypoints = num_keypoints
        del self.proto_in, self.proto_fuse, self.proto_out
        for head in self.heads:
            c = head["box"][0][0].in_channels
            del head["coef"]
            head["kpt"] = nn.Sequential(ConvBNSiLU(c, 64, 3), nn.Conv2d(64, num_keypoints * 3, 1))
            nn.init.zeros_(head["kpt"][-1].bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        _, n8, d16, d32 = self.features(x)
        return [torch.cat([h["box"](f), h["cls"](f), h["kpt"](f)], 1) for h, f in zip(self.heads, (n8, d16, d32))]


def decode_keypoints(raw: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """(B, A, K*3) raw keypoint channels → (B, A, K, 3): x, y in input pixels, visibility logit."""
    b, a, _ = raw.shape
    k = raw.view(b, a, -1, 3)
    xy = centres[None, :, None, :] + k[..., :2] * 2.0 * strides[None, :, None, None]
    return torch.cat([xy, k[..., 2:]], -1)


class ExportPose(nn.Module):
    """``output0 (B, 4+nc+K*3, A)``: xywh centre, class scores, then x, y, visibility per keypoint."""

    def __init__(self, net: YoloPose) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        outs = self.net(images)
        nc = self.net.num_classes
        flat = torch.cat([o.flatten(2) for o in outs], 2).transpose(1, 2)  # B, A, C
        centres, strides = anchor_grid([(o.shape[2], o.shape[3]) for o in outs], flat.device)
        ltrb = nn.functional.softplus(flat[..., :4]) * strides[None, :, None]
        xywh = torch.cat([centres + (ltrb[..., 2:] - ltrb[..., :2]) / 2, ltrb[..., :2] + ltrb[..., 2:]], -1)
        kpts = decode_keypoints(flat[..., 4 + nc :], centres, strides)
        kpts = torch.cat([kpts[..., :2], kpts[..., 2:].sigmoid()], -1).flatten(2)
        return torch.cat([xywh, flat[..., 4 : 4 + nc].sigmoid(), kpts], -1).transpose(1, 2)


def copy_folded_convs(net: nn.Module, export: nn.Module, path: Path) -> int:
    """Copy the convolutions of an ONNX file exported from ``export`` (which wraps ``net``)
    into ``net``, matched in execution order (trace order = graph order).

    The exporter folds each batch norm into its convolution, so each batch norm becomes the
    identity carrying the folded bias; training must keep batch norm frozen
    (``freeze_batchnorm``).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type == "Conv"]
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod)) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        export.eval()(torch.zeros(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    if len(order) != len(nodes):
        raise ValueError(f"{path}: {len(nodes)} convolutions, the network has {len(order)}")
    bn_of = {id(m[0]): m[1] for m in net.modules() if isinstance(m, ConvBNSiLU)}
    with torch.no_grad():
        for conv, node in zip(order, nodes):
            w = torch.from_numpy(np.array(inits[node.input[1]]))
            b = torch.from_numpy(np.array(inits[node.input[2]])) if len(node.input) > 2 else torch.zeros(w.shape[0])
            if w.shape != conv.weight.shape:
                raise ValueError(f"{path}: convolution {node.name} has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}")
            conv.weight.copy_(w)
            bn = bn_of.get(id(conv))
            if bn is None:
                conv.bias.copy_(b)
            else:
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
    return len(order)


def load_seg_onnx(net: YoloPose, path: Path) -> int:
    """Copy the backbone, pyramid, box and class head weights of a bundled seg ONNX file
    (exported from :class:`YoloSeg`) into ``net``; returns the number of convolutions copied."""
    seg = YoloSeg(net.num_classes)
    count = copy_folded_convs(seg, ExportYolov8(seg), path)
    state = {k: v for k, v in seg.state_dict().items() if not k.startswith(("proto", )) and ".coef." not in k}
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected and all(".kpt." in k for k in missing), (missing, unexpected)
    return count


def load_pose_onnx(net: YoloPose, path: Path) -> int:
    """Every weight of a pose ONNX file this tool exported (:class:`ExportPose`), to train
    it further; returns the number of convolutions copied."""
    return copy_folded_convs(net, ExportPose(net), path)


def is_pose_onnx(path: Path) -> bool:
    """Whether an ONNX file's metadata says it is a pose model (``task: pose``)."""
    if path.suffix != ".onnx":
        return False
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return meta.get("task") == "pose"


def freeze_batchnorm(net: nn.Module) -> None:
    """Batch norm in inference mode (running statistics fixed; scale and shift still learn)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
