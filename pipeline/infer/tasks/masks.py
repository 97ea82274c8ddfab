"""Masks of kept detections, each cropped to its integer box in source pixels.

``accurate``, ``tradeoff`` and ``fast`` run in the kernels chosen at load (CPU or GPU).
``ultralytics`` reproduces Ultralytics' ``process_mask_native`` exactly (NumPy, slower):
prototype logits upsampled ×f (1, 2 or 4: the least that cuts the letterbox padding on whole
pixels), the padding cut with its rounding, resized to the source (both bilinear, PyTorch's
``align_corners=False``), then ``> 0`` inside the float box. Each step is linear per axis,
so the two are one matrix per axis, computed once per geometry.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import MASK_MODES, Kernels
from pipeline.infer.letterbox import Letterbox
from pipeline.infer.tasks.base import host
from pipeline.vision.geometry import mask_boxes


def _resize_matrix(n_out: int, n_in: int, scale: float) -> np.ndarray:
    """(n_out, n_in) weights of PyTorch's bilinear resize along one axis (align_corners=False;
    ``scale``: input pixels per output pixel)."""
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    out = np.zeros((n_out, n_in), np.float64)
    np.add.at(out, (np.arange(n_out), i0), 1.0 - w1)
    np.add.at(out, (np.arange(n_out), i1), w1)
    return out


@lru_cache(maxsize=64)
def ultralytics_axes(src_hw: tuple[int, int], proto_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(H, mh) and (W, mw) matrices taking prototype logits to source pixels, Ultralytics' way."""
    (h, w), (mh, mw) = src_hw, proto_hw
    gain4 = min(4 * mh / h, 4 * mw / w)  # Ultralytics' prototypes are a quarter of the input
    pad = (4 * mh - max(round(h * gain4), 1)) | (4 * mw - max(round(w * gain4), 1))
    f = 4 // math.gcd(4, pad | pad // 2)
    gain = min(f * mh / h, f * mw / w)
    axes = []
    for size, m in ((h, mh), (w, mw)):
        up = _resize_matrix(f * m, m, 1.0 / f) if f > 1 else np.eye(m)
        content = max(round(size * gain), 1)
        start = round((f * m - content) / 2 - 0.1)
        axes.append((_resize_matrix(size, content, content / size) @ up[start : start + content]).astype(np.float32))
    return axes[0], axes[1]


def _ultralytics_masks(coefs: np.ndarray, protos: np.ndarray, xyxy: np.ndarray, boxes_px: np.ndarray,
                       letterbox: Letterbox) -> list[np.ndarray]:
    nm, mh, mw = protos.shape
    ay, ax = ultralytics_axes((letterbox.src_h, letterbox.src_w), (mh, mw))
    logits = (coefs @ protos.reshape(nm, -1)).reshape(-1, mh, mw)
    masks = []
    for i, (x0, y0, x1, y1) in enumerate(boxes_px.tolist()):
        crop = (ay[y0:y1] @ logits[i] @ ax[x0:x1].T) > 0
        crop[:, np.arange(x0, x1) < xyxy[i, 0]] = False  # a pixel is in when its index >= the box's edge
        crop[np.arange(y0, y1) < xyxy[i, 1]] = False
        masks.append(np.asfortranarray(crop))
    return masks


def box_masks(kernels: Kernels, coefs: np.ndarray, xyxy: np.ndarray, protos: Any, letterbox: Letterbox,
              options: PostprocessOptions) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """(h, w) boolean masks, one per box of ``xyxy`` (source pixels), cropped to ``mask_boxes``;
    and each mask's COCO run lengths over the frame where the kernels made them in the same
    pass (None: encoded from the crops when a sink asks)."""
    frame_hw = (letterbox.src_h, letterbox.src_w)
    boxes_px = mask_boxes(xyxy, frame_hw)
    coefs = np.ascontiguousarray(coefs, np.float32)
    if options.mask_decode_mode == "ultralytics":
        return _ultralytics_masks(coefs, host(protos).astype(np.float32, copy=False), xyxy, boxes_px, letterbox), None
    crops = kernels.decode_masks(coefs, protos, boxes_px, letterbox.params(), MASK_MODES[options.mask_decode_mode],
                                 options.tradeoff_factor, frame_hw)
    bits, offsets = crops.flat.view(np.bool_), crops.offsets
    # Column-major crops (see kernels.cpu.decode_masks): (h, w) views, Fortran order.
    masks = [bits[offsets[i] : offsets[i + 1]].reshape(int(b[2] - b[0]), int(b[3] - b[1])).T
             for i, b in enumerate(boxes_px)]
    if crops.runs is None or crops.run_offsets is None:
        return masks, None
    runs, ro = crops.runs, crops.run_offsets
    return masks, [runs[ro[i] : ro[i + 1]] for i in range(len(masks))]
