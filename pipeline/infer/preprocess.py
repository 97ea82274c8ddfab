"""Letterboxing a batch of frames into the model's input blob, reusing its buffers.

Example:
    >>> import numpy as np
    >>> pre = Preprocessor((64, 64))
    >>> blob, (g,) = pre([np.zeros((32, 64, 3), np.uint8)])
    >>> blob.shape, (g.pad_y, g.new_h)
    ((1, 3, 64, 64), (16, 32))
    >>> rect = Preprocessor((64, 64), rect_stride=16)  # a model with dynamic height and width
    >>> blob, (g,) = rect([np.zeros((32, 64, 3), np.uint8)])
    >>> blob.shape, (g.pad_y, g.new_h)
    ((1, 3, 32, 64), (0, 32))
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.infer.letterbox import PAD_VALUE, Letterbox, letterbox_into, rect_input_hw, to_blob

# Geometries kept per size: streams have a few sizes, an HTTP server sees any (so the
# caches are bounded: past this many, they start over).
SIZES_KEPT = 256


def center_crop_into(image: np.ndarray, out: np.ndarray) -> None:
    """Ultralytics' classification input (``classify_transforms``): the short side scaled
    to the input's, then the centre cut out (torchvision ``Resize`` + ``CenterCrop``).
    Area interpolation when shrinking stands in for PIL's antialiased bilinear."""
    h, w = image.shape[:2]
    oh, ow = out.shape[:2]
    size = min(oh, ow)
    nh, nw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR)
    top, left = int(round((nh - oh) / 2.0)), int(round((nw - ow) / 2.0))
    out[...] = resized[max(0, top) : max(0, top) + oh, max(0, left) : max(0, left) + ow]


class Preprocessor:
    """One canvas and one blob, grown to the largest batch seen; one letterbox geometry
    per source size (streams rarely change size). ``center_crop``: classification models'
    input (scale and crop, no padding); the geometry then only carries the source size.

    ``rect_stride``: the model takes any height and width (multiples of the stride), so each
    batch goes in at the smallest input that holds its images (:func:`rect_input_hw`, at
    most ``input_hw``) rather than the full square: a 16:9 frame in 384x640, not 640x640.
    A batch of mixed shapes goes in at the largest; the scale is the square's either way.
    """

    def __init__(self, input_hw: tuple[int, int], fixed_batch: int | None = None,
                 dtype: np.dtype | type = np.float32, center_crop: bool = False, rect_stride: int | None = None) -> None:
        self.input_hw = input_hw
        self.center_crop = center_crop
        self.rect_stride = None if center_crop else rect_stride
        self.dtype = np.dtype(dtype)  # the model input's: float16 for half-precision exports
        self.fixed_batch = fixed_batch
        self._geometry: dict[tuple[tuple[int, int], tuple[int, int]], Letterbox] = {}
        self._rect_hw: dict[tuple[int, int], tuple[int, int]] = {}
        # Flat buffers sized for the full input, viewed at each batch's shape (contiguous).
        self._canvas = np.empty(0, np.uint8)
        self._blob = np.empty(0, self.dtype)

    def batch_input_hw(self, sources_hw: Sequence[tuple[int, int]]) -> tuple[int, int]:
        """The input height and width a batch of images of these sizes goes in at."""
        if self.rect_stride is None or not sources_hw:
            return self.input_hw
        hws = []
        for hw in sources_hw:
            r = self._rect_hw.get(hw)
            if r is None:
                if len(self._rect_hw) >= SIZES_KEPT:
                    self._rect_hw.clear()
                r = self._rect_hw[hw] = rect_input_hw(hw, self.input_hw, self.rect_stride)
            hws.append(r)
        return max(h for h, _ in hws), max(w for _, w in hws)

    def geometry(self, source_hw: tuple[int, int], input_hw: tuple[int, int] | None = None) -> Letterbox:
        """The letterbox of a ``source_hw`` image in ``input_hw`` (default: the image alone's input)."""
        input_hw = input_hw or self.batch_input_hw([source_hw])
        g = self._geometry.get((source_hw, input_hw))
        if g is None:
            if len(self._geometry) >= SIZES_KEPT:
                self._geometry.clear()
            g = self._geometry[(source_hw, input_hw)] = Letterbox.fit(source_hw, input_hw)
        return g

    def __call__(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """The (B, 3, H, W) blob of ``images`` (padded to a fixed batch) and each one's geometry."""
        n = len(images)
        batch = self.fixed_batch or n
        if n > batch:
            raise ValueError(f"{n} images for a model with fixed batch size {batch}")
        sources_hw = [(img.shape[0], img.shape[1]) for img in images]
        ih, iw = self.batch_input_hw(sources_hw)
        size = batch * ih * iw * 3
        if self._canvas.size < size:
            full = batch * self.input_hw[0] * self.input_hw[1] * 3
            self._canvas = np.full(max(size, full), PAD_VALUE, np.uint8)
            self._blob = np.empty(max(size, full), self.dtype)
        canvas = self._canvas[:size].reshape(batch, ih, iw, 3)
        geoms = []
        for i, (img, hw) in enumerate(zip(images, sources_hw)):
            g = self.geometry(hw, (ih, iw))
            if self.center_crop:
                center_crop_into(img, canvas[i])
            else:
                letterbox_into(img, canvas[i], g)
            geoms.append(g)
        return to_blob(canvas, self._blob[:size].reshape(batch, 3, ih, iw)), geoms
