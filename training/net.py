"""The small YOLO-seg network that vidpipe ships (training tool only: imports torch).

Conv-BN-SiLU backbone down to stride 32, a top-down feature pyramid, anchor-free heads at
strides 8/16/32 predicting box distances (left, top, right, bottom), class logits and 32
mask coefficients, and a prototype branch at stride 4 that also sees stride-4 backbone
features for sharper mask edges.

The export wrappers at the bottom produce the two output layouts users bring from
Ultralytics/Roboflow: YOLOv8/11-seg ``(B, 4+nc+32, A)`` and YOLOv5-seg ``(B, A, 5+nc+32)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

STRIDES = (8, 16, 32)
NUM_PROTOS = 32


class ConvBNSiLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03),
            nn.SiLU(inplace=True),
        )


class Bottleneck(nn.Module):
    """1x1 squeeze, 3x3, 1x1 expand, with a residual connection."""

    def __init__(self, c: int) -> None:
        super().__init__()
        h = c // 2
        self.body = nn.Sequential(ConvBNSiLU(c, h, 1), ConvBNSiLU(h, h, 3), ConvBNSiLU(h, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _stage(c_in: int, c_out: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(ConvBNSiLU(c_in, c_out, 3, 2), *[Bottleneck(c_out) for _ in range(blocks)])


class YoloSeg(nn.Module):
    """Returns raw head maps per level and the prototypes (training form)."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (16, 32, 64, 96, 128)) -> None:
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        self.num_classes = num_classes
        self.stem = ConvBNSiLU(3, w1, 3, 2)  # stride 2
        self.s4 = _stage(w1, w2, 0)
        self.s8 = _stage(w2, w3, 1)
        self.s16 = _stage(w3, w4, 2)
        self.s32 = _stage(w4, w5, 2)
        self.lat16 = ConvBNSiLU(w5 + w4, w4, 1)
        self.top16 = Bottleneck(w4)
        self.lat8 = ConvBNSiLU(w4 + w3, w3, 1)
        self.top8 = Bottleneck(w3)
        self.down16 = ConvBNSiLU(w3, w3, 3, 2)
        self.pan16 = ConvBNSiLU(w3 + w4, w4, 1)
        self.down32 = ConvBNSiLU(w4, w4, 3, 2)
        self.pan32 = ConvBNSiLU(w4 + w5, w5, 1)
        head_width = 64
        self.heads = nn.ModuleList()
        for c in (w3, w4, w5):
            self.heads.append(nn.ModuleDict({
                "box": nn.Sequential(ConvBNSiLU(c, head_width, 3), nn.Conv2d(head_width, 4, 1)),
                "cls": nn.Sequential(ConvBNSiLU(c, head_width, 3), nn.Conv2d(head_width, num_classes, 1)),
                "coef": nn.Sequential(ConvBNSiLU(c, NUM_PROTOS, 3), nn.Conv2d(NUM_PROTOS, NUM_PROTOS, 1)),
            }))
        self.proto_in = ConvBNSiLU(w3, 48, 3)
        self.proto_fuse = ConvBNSiLU(48 + w2, 48, 3)
        self.proto_out = nn.Conv2d(48, NUM_PROTOS, 1)
        self._init_biases()

    def _init_biases(self) -> None:
        for head in self.heads:
            cls_conv = head["cls"][-1]
            nn.init.constant_(cls_conv.bias, -math.log((1 - 0.01) / 0.01))
            box_conv = head["box"][-1]
            # softplus(b) * stride ~ 2 strides: boxes start at a plausible size.
            nn.init.constant_(box_conv.bias, math.log(math.e**2 - 1))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backbone and pyramid: stride-4 features and the pyramid levels at strides 8/16/32."""
        p2 = self.stem(x)
        p4 = self.s4(p2)
        p8 = self.s8(p4)
        p16 = self.s16(p8)
        p32 = self.s32(p16)
        n16 = self.top16(self.lat16(torch.cat([F.interpolate(p32, scale_factor=2.0), p16], 1)))
        n8 = self.top8(self.lat8(torch.cat([F.interpolate(n16, scale_factor=2.0), p8], 1)))
        d16 = self.pan16(torch.cat([self.down16(n8), n16], 1))
        d32 = self.pan32(torch.cat([self.down32(d16), p32], 1))
        return p4, n8, d16, d32

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        p4, n8, d16, d32 = self.features(x)
        outs = []
        for head, feat in zip(self.heads, (n8, d16, d32)):
            outs.append(torch.cat([head["box"](feat), head["cls"](feat), head["coef"](feat)], 1))
        proto = F.interpolate(self.proto_in(n8), scale_factor=2.0)
        protos = self.proto_out(self.proto_fuse(torch.cat([proto, p4], 1)))
        return outs, protos


def anchor_grid(sizes: list[tuple[int, int]], device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres (A, 2) in input pixels and their strides (A,), level by level."""
    centres, strides = [], []
    for (h, w), s in zip(sizes, STRIDES):
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        centres.append(torch.stack([(xs.reshape(-1) + 0.5) * s, (ys.reshape(-1) + 0.5) * s], 1).float())
        strides.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(centres), torch.cat(strides)


def flatten_outputs(outs: list[torch.Tensor], num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoded boxes xyxy (B, A, 4), class logits (B, A, nc), coefficients (B, A, 32), ltrb (B, A, 4)."""
    sizes = [(o.shape[2], o.shape[3]) for o in outs]
    flat = torch.cat([o.flatten(2) for o in outs], 2).transpose(1, 2)  # B, A, C
    centres, strides = anchor_grid(sizes, flat.device)
    ltrb = F.softplus(flat[..., :4]) * strides[None, :, None]
    xyxy = torch.cat([centres - ltrb[..., :2], centres + ltrb[..., 2:]], -1)
    return xyxy, flat[..., 4 : 4 + num_classes], flat[..., 4 + num_classes :], ltrb


class _Export(nn.Module):
    def __init__(self, net: YoloSeg) -> None:
        super().__init__()
        self.net = net

    def decoded(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """xywh (centre, input pixels), class probabilities, coefficients, prototypes."""
        outs, protos = self.net(images)
        xyxy, cls, coef, _ = flatten_outputs(outs, self.net.num_classes)
        xywh = torch.cat([(xyxy[..., :2] + xyxy[..., 2:]) / 2, xyxy[..., 2:] - xyxy[..., :2]], -1)
        return xywh, cls.sigmoid(), coef, protos


class ExportYolov8(_Export):
    """``output0 (B, 4+nc+32, A)``: xywh centre in input pixels, class scores, coefficients."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xywh, scores, coef, protos = self.decoded(images)
        return torch.cat([xywh, scores, coef], -1).transpose(1, 2), protos


class ExportYolov5(_Export):
    """``output0 (B, A, 5+nc+32)``: xywh, objectness, class scores, coefficients.

    The network has no separate objectness head, so objectness is the best class score
    and the class scores are divided by it: objectness × class score, the YOLOv5 decoding
    rule, gives back exactly the scores of the YOLOv8 layout.
    """

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xywh, scores, coef, protos = self.decoded(images)
        obj = scores.amax(-1, keepdim=True)
        return torch.cat([xywh, obj, scores / obj.clamp_min(1e-9), coef], -1), protos
