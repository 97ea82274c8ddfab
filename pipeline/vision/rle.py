"""COCO run-length encoding of instance masks, from masks kept cropped to their box.

vidpipe keeps every mask cropped to its box (DESIGN.md: 100 full 1080p masks are 200 MB).
The wire format wants COCO *compressed* RLE of the full-frame mask, so the kernels here
walk the full frame in column-major order without ever materialising it: columns outside
the box and rows above and below it are runs of zeros added arithmetically.

Example:
    >>> import numpy as np
    >>> crop = np.ones((2, 3), dtype=bool)
    >>> rle = encode_crop(crop, x0=1, y0=1, height=4, width=5)
    >>> rle["size"], bool(decode(rle)[1:3, 1:4].all()), int(decode(rle).sum())
    ([4, 5], True, 6)
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _counts_from_crop(crop_t, x0, y0, height, width):  # pragma: no cover - numba
    """Run lengths (starting with a zero run) of the full frame, column-major.

    ``crop_t`` is the crop transposed, (columns, rows) C-contiguous: each column of the
    mask is a contiguous row here, so the scan reads memory in order."""
    cw, ch = crop_t.shape
    # Worst case: every crop pixel and every gap between crop columns starts a run.
    out = np.empty(ch * cw + cw + 3, dtype=np.int64)
    n = 0
    run = x0 * height
    value = 0  # value of the run being counted; COCO starts with zeros
    for cx in range(cw):
        run_zero = y0 if cx == 0 else y0 + (height - (y0 + ch))
        if run_zero > 0:
            if value == 0:
                run += run_zero
            else:
                out[n] = run
                n += 1
                value = 0
                run = run_zero
        column = crop_t[cx]
        cy = 0
        while cy < ch:
            # Extend the current run as far as it goes, then switch value.
            start = cy
            if value == 0:
                while cy < ch and not column[cy]:
                    cy += 1
            else:
                while cy < ch and column[cy]:
                    cy += 1
            run += cy - start
            if cy < ch:
                out[n] = run
                n += 1
                value = 1 - value
                run = 0
    tail = (height - (y0 + ch)) + (width - (x0 + cw)) * height
    if cw == 0:
        tail = width * height - x0 * height
    if tail > 0:
        if value == 0:
            run += tail
        else:
            out[n] = run
            n += 1
            value = 0
            run = tail
    if run > 0 or n == 0:
        out[n] = run
        n += 1
    return out[:n]


@njit(cache=True, nogil=True)
def _counts_to_ascii(counts):  # pragma: no cover - numba
    """COCO's rleToString: delta against counts[i-2], 5-bit groups + 48, continuation bit."""
    buf = np.empty(counts.shape[0] * 13 + 1, dtype=np.uint8)
    p = 0
    for i in range(counts.shape[0]):
        x = counts[i]
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as in the C implementation
            if c & 0x10:
                more = x != -1
            else:
                more = x != 0
            if more:
                c |= 0x20
            buf[p] = c + 48
            p += 1
    return buf[:p]


@njit(cache=True, nogil=True)
def _ascii_to_counts(data):  # pragma: no cover - numba
    out = np.empty(data.shape[0], dtype=np.int64)
    m = 0
    p = 0
    while p < data.shape[0]:
        x = np.int64(0)
        k = 0
        more = True
        while more:
            c = np.int64(data[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = (c & 0x20) != 0
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= np.int64(-1) << (5 * k)
        if m > 2:
            x += out[m - 2]
        out[m] = x
        m += 1
    return out[:m]


def encode_crop(crop: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict:
    """COCO compressed RLE of a full ``height``×``width`` mask that is zero outside ``crop``.

    ``crop`` is a boolean (or 0/1) array placed with its top-left corner at ``(x0, y0)``;
    it must lie inside the frame.
    """
    ch, cw = crop.shape
    if x0 < 0 or y0 < 0 or x0 + cw > width or y0 + ch > height:
        raise ValueError(
            f"mask crop {cw}x{ch} at ({x0},{y0}) does not fit a {width}x{height} frame"
        )
    crop_t = crop.T  # column-major masks (as decoded by vidpipe) transpose without a copy
    if crop_t.dtype != np.bool_ or not crop_t.flags.c_contiguous:
        crop_t = np.ascontiguousarray(crop_t, dtype=np.bool_)
    return encode_counts(_counts_from_crop(crop_t, x0, y0, height, width), height, width)


def encode_counts(counts: np.ndarray, height: int, width: int) -> dict:
    """COCO compressed RLE from run lengths already made (int64, zeros first, column-major
    over the ``height``×``width`` frame), as the mask kernels write them."""
    return {"size": [int(height), int(width)], "counts": _counts_to_ascii(counts).tobytes().decode("ascii")}


def encode(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a full-frame boolean mask."""
    h, w = mask.shape
    return encode_crop(mask, 0, 0, h, w)


def counts_of(rle: dict) -> np.ndarray:
    """The run lengths of a COCO RLE dict (compressed or not), checked: every run
    non-negative and the runs covering exactly ``size``; a ValueError says what is wrong.
    Cheap (no mask is made): receivers check untrusted RLE with it before decoding."""
    h, w = (int(v) for v in rle["size"])
    counts_field = rle["counts"]
    if isinstance(counts_field, str):
        try:
            counts_field = counts_field.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("RLE counts are not ASCII") from None
    if isinstance(counts_field, (bytes, bytearray)):
        data = np.frombuffer(counts_field, dtype=np.uint8)
        # The decoder reads one character past each one with the continuation bit: only
        # characters of COCO's alphabet, and a last one without that bit, keep it in bounds.
        if ((data < 48) | (data > 111)).any() or (len(data) and (int(data[-1]) - 48) & 0x20):
            raise ValueError("RLE counts are not COCO's compressed encoding")
        counts = _ascii_to_counts(data)
    else:  # uncompressed RLE: a list of ints
        counts = np.asarray(counts_field, dtype=np.int64)
    if counts.sum() != h * w or (counts < 0).any():
        raise ValueError(f"RLE counts sum to {int(counts.sum())}, expected {h * w} for size {[h, w]}")
    return counts


def decode(rle: dict) -> np.ndarray:
    """Full-frame boolean mask of a COCO compressed RLE dict (``size``, ``counts``)."""
    h, w = (int(v) for v in rle["size"])
    counts = counts_of(rle)
    values = np.zeros(counts.shape[0], dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape(w, h).T


def warm_up() -> None:
    """Compile the kernels now (cached on disk), so no frame pays for it."""
    encode_crop(np.ones((2, 2), dtype=bool), 1, 1, 4, 4)
    decode(encode(np.eye(3, dtype=bool)))
