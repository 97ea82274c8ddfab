"""Letterboxing a batch of frames into the model's input blob, reusing its buffers.

Example:
    >>> import numpy as np
    >>> pre = Preprocessor((64, 64))
    >>> blob, (g,) = pre([np.zeros((32, 64, 3), np.uint8)])
    >>> blob.shape, (g.pad_y, g.new_h)
    ((1, 3, 64, 64), (16, 32))
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.infer.letterbox import PAD_VALUE, Letterbox, letterbox_into, to_blob


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
    input (scale and crop, no padding); the geometry then only carries the source size."""

    def __init__(self, input_hw: tuple[int, int], fixed_batch: int | None = None,
                 dtype: np.dtype | type = np.float32, center_crop: bool = False) -> None:
        self.input_hw = input_hw
        self.center_crop = center_crop
        self.dtype = np.dtype(dtype)  # the model input's: float16 for half-precision exports
        self.fixed_batch = fixed_batch
        self._geometry: dict[tuple[int, int], Letterbox] = {}
        self._canvas = np.full((0, *input_hw, 3), PAD_VALUE, np.uint8)
        self._blob = np.empty((0, 3, *input_hw), self.dtype)

    def geometry(self, source_hw: tuple[int, int]) -> Letterbox:
        g = self._geometry.get(source_hw)
        if g is None:
            g = self._geometry[source_hw] = Letterbox.fit(source_hw, self.input_hw)
        return g

    def __call__(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """The (B, 3, H, W) blob of ``images`` (padded to a fixed batch) and each one's geometry."""
        n = len(images)
        batch = self.fixed_batch or n
        if n > batch:
            raise ValueError(f"{n} images for a model with fixed batch size {batch}")
        if self._canvas.shape[0] < batch:
            ih, iw = self.input_hw
            self._canvas = np.full((batch, ih, iw, 3), PAD_VALUE, np.uint8)
            self._blob = np.empty((batch, 3, ih, iw), self.dtype)
        geoms = []
        for i, img in enumerate(images):
            g = self.geometry((img.shape[0], img.shape[1]))
            if self.center_crop:
                center_crop_into(img, self._canvas[i])
            else:
                letterbox_into(img, self._canvas[i], g)
            geoms.append(g)
        return to_blob(self._canvas[:batch], self._blob[:batch]), geoms
