"""Image references turned into what travels: base64 strings, each with the factor the
client shrank it by (None: sent as it is).

A reference is a file path, an http(s) URL (fetched here, as ``inference-sdk`` does, so
the server needs no URL access), a base64 string, encoded bytes, a BGR ``numpy`` array, a
PIL image, or a list of these. Arrays and PIL images are encoded as JPEG (or PNG, lossless).

Example:
    >>> import numpy as np
    >>> [(len(b64) > 0, scale) for b64, scale in encode_inputs(np.zeros((40, 60, 3), np.uint8), max_hw=(20, 20))]
    [(True, 0.3333333333333333)]
    >>> encode_inputs("no/such/file.png")
    Traceback (most recent call last):
    ...
    pipeline.client.errors.InvalidInputFormatError: image 'no/such/file.png' is not a file, an http(s) URL or base64 image data
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import cv2
import numpy as np

from pipeline.client.errors import InvalidInputFormatError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

#: One image reference, or a list of them (see the module's docstring).
ImagesReference: TypeAlias = "str | bytes | np.ndarray | Image"
Encoded: TypeAlias = "tuple[str, float | None]"

_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


def scale_to_fit(height: int, width: int, max_hw: tuple[int, int] | None) -> float | None:
    """The factor that fits (height, width) inside ``max_hw`` keeping its aspect, or None
    when it already fits (images are only ever shrunk).

    >>> scale_to_fit(1080, 1920, (640, 640)), scale_to_fit(480, 640, (640, 640))
    (0.3333333333333333, None)
    """
    if max_hw is None:
        return None
    ratio = min(max_hw[0] / height, max_hw[1] / width)
    return ratio if ratio < 1.0 else None


def encode_array(image: np.ndarray, encoding: str = "jpeg") -> str:
    """A BGR (or grey) array as base64 JPEG/PNG."""
    ok, buf = cv2.imencode(".png" if encoding == "png" else ".jpg", image)
    if not ok:
        raise InvalidInputFormatError(f"could not encode an array of shape {image.shape} and dtype {image.dtype} as {encoding}")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def decode_image(data: bytes, what: str) -> np.ndarray:
    """Encoded image bytes as a BGR array; InvalidInputFormatError naming ``what``."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InvalidInputFormatError(f"{what}: not an image OpenCV can decode")
    return image


def _shrunk_array(image: np.ndarray, max_hw: tuple[int, int] | None, encoding: str) -> Encoded:
    scale = scale_to_fit(image.shape[0], image.shape[1], max_hw)
    if scale is not None:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return encode_array(image, encoding), scale


def _encoded_bytes(data: bytes, what: str, max_hw: tuple[int, int] | None, encoding: str) -> Encoded:
    """Bytes as they are, unless downsizing needs them decoded and shrunk."""
    if max_hw is not None:
        image = decode_image(data, what)
        if scale_to_fit(image.shape[0], image.shape[1], max_hw) is not None:
            return _shrunk_array(image, max_hw, encoding)
    return base64.b64encode(data).decode("ascii"), None


def _pil_to_array(image: Any) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _is_pil(obj: Any) -> bool:
    # Checked by module name: PIL is imported only by callers that pass PIL images.
    return any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in type(obj).__mro__)


def _base64_bytes(text: str) -> bytes:
    """The bytes ``text`` encodes as base64, or b"" when it is not base64 (the strict C
    check first: a regular expression over a megabyte string costs milliseconds)."""
    if len(text) < 8:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    if not _BASE64.match(text):  # base64 wrapped in lines is base64 too
        return b""
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return b""


def _string(reference: str, max_hw: tuple[int, int] | None, encoding: str, fetch: Callable[[str], bytes]) -> Encoded:
    if reference.startswith(("http://", "https://")):
        return _encoded_bytes(fetch(reference), f"image {reference!r}", max_hw, encoding)
    if os.path.isfile(reference):
        with open(reference, "rb") as fh:
            return _encoded_bytes(fh.read(), f"image file {reference!r}", max_hw, encoding)
    payload = reference.split(",", 1)[1] if reference.startswith("data:") else reference
    if max_hw is None and len(payload) > 4096 and _BASE64.match(payload[:1024]) and _BASE64.match(payload[-1024:]):
        return payload, None  # longer than any path: sent as it is (decoding it here only to check costs ms)
    data = _base64_bytes(payload)
    if data:
        return _encoded_bytes(data, "base64 image", max_hw, encoding) if max_hw else (payload, None)
    shown = reference if len(reference) <= 80 else reference[:77] + "..."
    raise InvalidInputFormatError(f"image {shown!r} is not a file, an http(s) URL or base64 image data")


def encode_inputs(reference: ImagesReference | list[ImagesReference], max_hw: tuple[int, int] | None = None,
                  encoding: str = "jpeg", fetch: Callable[[str], bytes] | None = None) -> list[Encoded]:
    """Each image of ``reference`` (one or a list) as (base64, scale factor or None).
    ``max_hw``: shrink larger images to fit (height, width); ``fetch``: how URLs are read."""
    if isinstance(reference, (list, tuple)):
        return [e for r in reference for e in encode_inputs(r, max_hw, encoding, fetch)]
    if isinstance(reference, str):
        return [_string(reference, max_hw, encoding, fetch or _no_fetch)]
    if isinstance(reference, (bytes, bytearray, memoryview)):
        return [_encoded_bytes(bytes(reference), "image bytes", max_hw, encoding)]
    if isinstance(reference, np.ndarray):
        if reference.ndim not in (2, 3) or reference.size == 0:
            raise InvalidInputFormatError(f"an image array must be (H, W) or (H, W, C), got shape {reference.shape}")
        return [_shrunk_array(reference, max_hw, encoding)]
    if _is_pil(reference):
        return [_shrunk_array(_pil_to_array(reference), max_hw, encoding)]
    raise InvalidInputFormatError(f"unknown type of image reference: {type(reference).__name__}")


def _no_fetch(url: str) -> bytes:
    raise InvalidInputFormatError(f"image {url!r}: URLs need a client to fetch them")
