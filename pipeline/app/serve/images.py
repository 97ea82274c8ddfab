"""Request images to BGR arrays, within limits: the pixel count is read from the image's
header and checked BEFORE anything is decoded (a 30000 x 30000 PNG of a few KB is refused
without allocating its 2.7 GB), corrupt bytes are a 400.

Example:
    >>> import base64, cv2, numpy as np
    >>> ok, png = cv2.imencode(".png", np.zeros((4, 6, 3), np.uint8))
    >>> decode_image(png.tobytes(), max_pixels=100).shape
    (4, 6, 3)
    >>> decode_image(png.tobytes(), max_pixels=10)
    Traceback (most recent call last):
    ...
    pipeline.app.serve.errors.ServeError: image of 6x4 = 24 pixels is over the limit of 10 pixels
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import sys
import warnings

import cv2
import numpy as np

from pipeline.app.serve.errors import ServeError, bad_image, too_large
from pipeline.app.serve.requests import ImageRef


def header_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the image's header alone (Pillow opens lazily: no pixel is decoded)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own bomb warning: our limit is checked below
        try:
            with Image.open(io.BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
        except Image.DecompressionBombError as exc:  # Pillow refuses > 2 x its own limit before we can ask
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            raise too_large(f"image of {pixels.group(1) if pixels else 'too many'} pixels is over the limit") from None
        except Exception:  # noqa: BLE001 - Pillow raises many types for unreadable headers
            raise bad_image("image bytes are not an image (no format recognised in the header)") from None


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """A BGR uint8 array from encoded bytes (JPEG, PNG, BMP, WebP, TIFF, ...)."""
    if not data:
        raise bad_image("empty image")
    width, height = header_size(data)
    if width * height > max_pixels:
        raise too_large(f"image of {width}x{height} = {width * height} pixels is over the limit of {max_pixels} pixels")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise bad_image(f"image bytes could not be decoded ({width}x{height} declared in the header: corrupt or truncated)")
    return image


def b64_bytes(value: str) -> bytes:
    """Bytes of a base64 string, with or without a ``data:image/...;base64,`` prefix."""
    if value.startswith("data:") and "," in value[:100]:
        value = value.split(",", 1)[1]
    try:
        if sys.version_info >= (3, 11):  # the same strictness in C: validate=True runs a regex over the string (2x slower)
            return binascii.a2b_base64(value, strict_mode=True)
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_image("image value is not valid base64") from None


def load_image(ref: ImageRef, max_pixels: int, fetch_url: object = None) -> np.ndarray:
    """One request image; ``fetch_url``: a callable URL -> bytes (None: URL images are off)."""
    if ref.type == "numpy":
        raise bad_image("image type 'numpy' (a pickled array) is not accepted: unpickling runs the sender's code; "
                        "send the image encoded, as type 'base64'")
    if ref.type == "url":
        if fetch_url is None:
            raise ServeError(400, "URL images are disabled on this server (enable urls.enabled in the serve config)")
        data = fetch_url(ref.value)  # type: ignore[operator]
    else:
        data = b64_bytes(ref.value)
    return decode_image(data, max_pixels)
