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
    image goes in at the smallest input that holds it (:func:`rect_input_hw`, at most
    ``input_hw``) at the full input's scale: a 16:9 frame in 384x640, not 640x640. Images
    of different inputs are batched apart (:meth:`groups`).
    """

    def __init__(self, input_hw: tuple[int, int], fixed_batch: int | None = None,
                 dtype: np.dtype | type = np.float32, center_crop: bool = False, rect_stride: int | None = None) -> None:
        self.input_hw = input_hw
        self.center_crop = center_crop
        self.rect_stride = None if center_crop else rect_stride
        self.dtype = np.dtype(dtype)  # the model input's: float16 for half-precision exports
        self.fixed_batch = fixed_batch
        self._geometry: dict[tuple[int, int], Letterbox] = {}
        self._rect_hw: dict[tuple[int, int], tuple[int, int]] = {}
        # Flat buffers sized for the full input, viewed at each batch's shape (contiguous).
        self._canvas = np.empty(0, np.uint8)
        self._blob = np.empty(0, self.dtype)

    def input_hw_of(self, source_hw: tuple[int, int]) -> tuple[int, int]:
        """The input height and width an image of ``source_hw`` goes in at."""
        if self.rect_stride is None:
            return self.input_hw
        r = self._rect_hw.get(source_hw)
        if r is None:
            if len(self._rect_hw) >= SIZES_KEPT:
                self._rect_hw.clear()
            r = self._rect_hw[source_hw] = rect_input_hw(source_hw, self.input_hw, self.rect_stride)
        return r

    def groups(self, images: Sequence[np.ndarray]) -> list[list[int]]:
        """Indices of ``images`` grouped by the input they go in at (in order of first
        appearance): one batch each, so that a frame's input never depends on its batch-mates."""
        by_input: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            by_input.setdefault(self.input_hw_of((img.shape[0], img.shape[1])), []).append(i)
        return list(by_input.values())

    def geometry(self, source_hw: tuple[int, int]) -> Letterbox:
        """The letterbox of a ``source_hw`` image in its input, at the full input's scale."""
        g = self._geometry.get(source_hw)
        if g is None:
            if len(self._geometry) >= SIZES_KEPT:
                self._geometry.clear()
            g = self._geometry[source_hw] = Letterbox.fit(source_hw, self.input_hw_of(source_hw), self.input_hw)
        return g

    def __call__(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """The (B, 3, H, W) blob of ``images`` (padded to a fixed batch) and each one's
        geometry. With ``rect_stride`` they must share one input (see :meth:`groups`)."""
        n = len(images)
        batch = self.fixed_batch or n
        if n > batch:
            raise ValueError(f"{n} images for a model with fixed batch size {batch}")
        sources_hw = [(img.shape[0], img.shape[1]) for img in images]
        inputs = {self.input_hw_of(hw) for hw in sources_hw}
        if len(inputs) > 1:
            raise ValueError(f"images of different input sizes in one batch ({sorted(inputs)}): batch each of "
                             "Preprocessor.groups(images) on its own")
        ih, iw = inputs.pop() if inputs else self.input_hw
        size = batch * ih * iw * 3
        if self._canvas.size < size:
            full = batch * self.input_hw[0] * self.input_hw[1] * 3
            self._canvas = np.full(max(size, full), PAD_VALUE, np.uint8)
            self._blob = np.empty(max(size, full), self.dtype)
        canvas = self._canvas[:size].reshape(batch, ih, iw, 3)
        geoms = []
        for i, (img, hw) in enumerate(zip(images, sources_hw)):
            g = self.geometry(hw)
            if self.center_crop:
                center_crop_into(img, canvas[i])
            else:
                letterbox_into(img, canvas[i], g)
            geoms.append(g)
        return to_blob(canvas, self._blob[:size].reshape(batch, 3, ih, iw)), geoms
