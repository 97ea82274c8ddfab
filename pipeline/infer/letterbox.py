"""Letterbox pre-processing (Ultralytics convention) and its exact inverse.

The source image is scaled to fit the model input keeping its aspect ratio, centred, and
padded with grey 114. The geometry is kept per frame so boxes and masks map back to
source pixels exactly.

Example:
    >>> g = Letterbox.fit((720, 1280), (640, 640))
    >>> (g.new_w, g.new_h, g.pad_x, g.pad_y)
    (640, 360, 0, 140)
    >>> g.to_source_xyxy(np.array([[0, 140, 640, 500]], np.float32)).tolist()
    [[0.0, 0.0, 1280.0, 720.0]]
    >>> rect_input_hw((720, 1280), (640, 640), stride=32)  # Ultralytics' ``rect``: 16:9 in 384x640
    (384, 640)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    src_h: int
    src_w: int
    in_h: int
    in_w: int
    new_h: int  # size of the scaled image inside the input
    new_w: int
    pad_y: int  # top
    pad_x: int  # left

    @classmethod
    def fit(cls, source_hw: tuple[int, int], input_hw: tuple[int, int], scale_hw: tuple[int, int] | None = None) -> Letterbox:
        """``source_hw`` scaled to fit ``scale_hw`` (default: the input), centred in ``input_hw``:
        a rect input (:func:`rect_input_hw`) keeps the square's scale and content size exactly."""
        sh, sw = int(source_hw[0]), int(source_hw[1])
        ih, iw = int(input_hw[0]), int(input_hw[1])
        if sh <= 0 or sw <= 0:
            raise ValueError(f"source size must be positive, got {sw}x{sh}")
        fh, fw = scale_hw or (ih, iw)
        r = min(fh / sh, fw / sw)
        nw, nh = min(iw, max(1, round(sw * r))), min(ih, max(1, round(sh * r)))
        return cls(sh, sw, ih, iw, nh, nw, (ih - nh) // 2, (iw - nw) // 2)

    @property
    def scale_x(self) -> float:
        return self.new_w / self.src_w

    @property
    def scale_y(self) -> float:
        return self.new_h / self.src_h

    def to_source_xyxy(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes in input pixels → source pixels, clipped to the source image."""
        out = np.empty_like(xyxy, dtype=np.float32)
        out[:, 0::2] = (xyxy[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (xyxy[:, 1::2] - self.pad_y) / self.scale_y
        np.clip(out[:, 0::2], 0, self.src_w, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, self.src_h, out=out[:, 1::2])
        return out

    def params(self) -> np.ndarray:
        """(scale_x, scale_y, pad_x, pad_y, in_w, in_h) for the Numba kernels."""
        return np.array([self.scale_x, self.scale_y, self.pad_x, self.pad_y, self.in_w, self.in_h], np.float64)


def rect_input_hw(source_hw: tuple[int, int], input_hw: tuple[int, int], stride: int) -> tuple[int, int]:
    """The smallest input that holds the image scaled as in ``input_hw`` (same scale),
    each side padded up to a multiple of ``stride``: what a model with dynamic height and
    width is fed (Ultralytics' ``rect``). A 16:9 frame then costs 60 % of the square."""
    g = Letterbox.fit(source_hw, input_hw)
    return g.new_h + (g.in_h - g.new_h) % stride, g.new_w + (g.in_w - g.new_w) % stride


def letterbox_into(image: np.ndarray, out: np.ndarray, geometry: Letterbox) -> None:
    """Write the letterboxed BGR ``image`` into ``out`` (in_h, in_w, 3) uint8."""
    g = geometry
    out[: g.pad_y] = PAD_VALUE
    out[g.pad_y + g.new_h :] = PAD_VALUE
    out[:, : g.pad_x] = PAD_VALUE
    out[:, g.pad_x + g.new_w :] = PAD_VALUE
    inner = out[g.pad_y : g.pad_y + g.new_h, g.pad_x : g.pad_x + g.new_w]
    if (g.new_h, g.new_w) == image.shape[:2]:
        inner[...] = image
    else:
        cv2.resize(image, (g.new_w, g.new_h), dst=inner, interpolation=cv2.INTER_LINEAR)


def to_blob(images_hwc: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(B, H, W, 3) uint8 BGR → (B, 3, H, W) float32 RGB in [0, 1], the YOLO input."""
    b, h, w, _ = images_hwc.shape
    if out is None:
        out = np.empty((b, 3, h, w), np.float32)
    for c in range(3):
        # cv2.multiply-free path: numpy ufuncs with out= avoid temporaries.
        np.multiply(images_hwc[..., 2 - c], np.float32(1 / 255), out=out[:, c], casting="unsafe")
    return out
