"""Numba kernels of the post-processing hot path: candidate selection, NMS, mask decoding.

All are ``@njit(cache=True, nogil=True)``: compiled once (cached on disk), run without the
GIL so the inference thread's post-processing overlaps decoding in other threads.
``warm_up()`` compiles them when a model loads, so the first frame pays nothing.

Mask modes: ``accurate`` evaluates each source pixel by bilinear interpolation of the
prototype logits; ``tradeoff`` and ``fast`` evaluate a grid between prototype and input
resolution (``fast`` is the prototype grid itself) and scale the result to the box by
nearest neighbour. A pixel is in the mask when ``coefficients · prototypes > 0``, i.e.
``sigmoid(...) > 0.5``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from pipeline.infer.kernels.base import MODE_ACCURATE, MODE_FAST, MODE_TRADEOFF, Candidates, MaskCrops


@njit(cache=True, nogil=True)
def select_candidates(pred, channels_first, has_objectness, num_classes, confidence, allowed):  # pragma: no cover
    """Anchors whose best class score (× objectness) reaches ``confidence`` and whose class
    is allowed. Returns (anchor index, score, class) arrays."""
    if channels_first:
        n_anchors = pred.shape[1]
    else:
        n_anchors = pred.shape[0]
    first_cls = 5 if has_objectness else 4
    idx = np.empty(n_anchors, np.int64)
    score = np.empty(n_anchors, np.float32)
    cls = np.empty(n_anchors, np.int64)
    k = 0
    for a in range(n_anchors):
        obj = 1.0
        if has_objectness:
            obj = pred[4, a] if channels_first else pred[a, 4]
            if obj < confidence:
                continue
        best = -1.0
        best_c = 0
        for c in range(num_classes):
            v = pred[first_cls + c, a] if channels_first else pred[a, first_cls + c]
            if v > best:
                best = v
                best_c = c
        s = best * obj
        if s >= confidence and allowed[best_c]:
            idx[k] = a
            score[k] = s
            cls[k] = best_c
            k += 1
    return idx[:k], score[:k], cls[:k]


@njit(cache=True, nogil=True)
def gather_boxes(pred, channels_first, idx):  # pragma: no cover
    """xywh (centre) rows of ``idx`` → xyxy (K, 4) float32 in input pixels."""
    out = np.empty((idx.shape[0], 4), np.float32)
    for i in range(idx.shape[0]):
        a = idx[i]
        if channels_first:
            x, y, w, h = pred[0, a], pred[1, a], pred[2, a], pred[3, a]
        else:
            x, y, w, h = pred[a, 0], pred[a, 1], pred[a, 2], pred[a, 3]
        out[i, 0] = x - w / 2
        out[i, 1] = y - h / 2
        out[i, 2] = x + w / 2
        out[i, 3] = y + h / 2
    return out


@njit(cache=True, nogil=True)
def nms(boxes, scores, classes, iou_threshold, class_agnostic, max_detections):  # pragma: no cover
    """Greedy NMS. Inputs in any order; returns kept indices sorted by score (stable)."""
    order = np.argsort(-scores, kind="mergesort")
    n = order.shape[0]
    suppressed = np.zeros(n, np.bool_)
    keep = np.empty(min(n, max_detections), np.int64)
    k = 0
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for oi in range(n):
        if k >= max_detections:
            break
        if suppressed[oi]:
            continue
        i = order[oi]
        keep[k] = i
        k += 1
        for oj in range(oi + 1, n):
            if suppressed[oj]:
                continue
            j = order[oj]
            if not class_agnostic and classes[i] != classes[j]:
                continue
            xx0 = max(boxes[i, 0], boxes[j, 0])
            yy0 = max(boxes[i, 1], boxes[j, 1])
            xx1 = min(boxes[i, 2], boxes[j, 2])
            yy1 = min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, xx1 - xx0) * max(0.0, yy1 - yy0)
            union = areas[i] + areas[j] - inter
            if union > 0 and inter / union > iou_threshold:
                suppressed[oj] = True
    return keep[:k]


@njit(cache=True, nogil=True)
def _region_logits(coef, protos, px0, py0, px1, py1):  # pragma: no cover
    """coef · protos over the prototype window [py0, py1) × [px0, px1). Row views indexed by
    the loop counter: the compiler then vectorises the inner loop (2× faster than indexing
    the 3-D array with an offset)."""
    nm = protos.shape[0]
    rows, cols = py1 - py0, px1 - px0
    out = np.zeros((rows, cols), np.float32)
    for k in range(nm):
        ck = coef[k]
        plane = protos[k, py0:py1, px0:px1]
        for r in range(rows):
            prow = plane[r]
            orow = out[r]
            for c in range(cols):
                orow[c] += ck * prow[c]
    return out


@njit(cache=True, nogil=True)
def _bilinear_taps(pos, size):  # pragma: no cover
    """Lower index, upper index and weight of the upper one, clamped to [0, size-1]."""
    f = math.floor(pos)
    w = pos - f
    i0 = int(f)
    i1 = i0 + 1
    if i0 < 0:
        i0, i1, w = 0, 0, 0.0
    elif i1 > size - 1:
        i0, i1, w = size - 1, size - 1, 0.0
    return i0, i1, w


@njit(cache=True, nogil=True)
def _column_taps(x0, bw, scale, pad, k, size, origin):  # pragma: no cover
    """Bilinear taps (relative to ``origin``) for ``bw`` source pixels from ``x0``."""
    i0 = np.empty(bw, np.int64)
    i1 = np.empty(bw, np.int64)
    w = np.empty(bw, np.float32)
    for c in range(bw):
        a, b, t = _bilinear_taps(((x0 + c + 0.5) * scale + pad) * k - 0.5, size)
        i0[c], i1[c], w[c] = a - origin, b - origin, t
    return i0, i1, w


@njit(cache=True, nogil=True, inline="always")
def _emit(counts, n, run, current, length, value):  # pragma: no cover
    """Append ``length`` pixels of ``value`` to COCO run lengths: ``n`` runs written, the
    open ``run`` of ``current`` pixels. Returns the new (n, run, current): scalars, so the
    compiler keeps them in registers."""
    if length <= 0:
        return n, run, current
    if value == current:
        return n, run + length, current
    counts[n] = run
    return n + 1, length, value


@njit(cache=True, nogil=True, inline="always")
def _reserve(counts, used, need):  # pragma: no cover
    """``counts`` with room for ``need`` more runs after ``used`` (doubled when short)."""
    if used + need <= counts.shape[0]:
        return counts
    grown = np.empty(max(2 * counts.shape[0], used + need), np.int64)
    grown[:used] = counts[:used]
    return grown


@njit(cache=True, nogil=True)
def _segments(index):  # pragma: no cover
    """Start of each maximal range of equal values in ``index`` (monotone), and its end."""
    n = index.shape[0]
    starts = np.empty(n + 1, np.int64)
    k = 0
    for r in range(n):
        if r == 0 or index[r] != index[r - 1]:
            starts[k] = r
            k += 1
    starts[k] = n
    return starts[: k + 1]


@njit(cache=True, nogil=True, inline="always")
def _column_of_segments(oc, counts, n, run, current, starts, col, ry0, ry1, wy):  # pragma: no cover
    """Accurate mode, one mask column: every pixel's bilinear logit ``> 0``, written to ``oc``
    and appended as runs. Within a segment (rows sharing their two prototype taps) the logit
    is linear in the row's weight and the float expression is monotone in it, so the rows
    set form one prefix or suffix: two evaluations decide a segment, a bisection finds a
    crossing, and the pixels equal a per-pixel evaluation bit for bit."""
    for s in range(starts.shape[0] - 1):
        r0, r1 = starts[s], starts[s + 1]
        a = col[ry0[r0]]
        d = col[ry1[r0]] - a
        first = a + d * wy[r0] > 0
        last = a + d * wy[r1 - 1] > 0
        cut = r1
        if first != last:
            lo, hi = r0 + 1, r1 - 1
            while lo < hi:
                m = (lo + hi) // 2
                if (a + d * wy[m] > 0) == first:
                    lo = m + 1
                else:
                    hi = m
            cut = lo
        if first:
            oc[r0:cut] = 1
        else:
            oc[cut:r1] = 1
        n, run, current = _emit(counts, n, run, current, cut - r0, 1 if first else 0)
        n, run, current = _emit(counts, n, run, current, r1 - cut, 0 if first else 1)
    return n, run, current


@njit(cache=True, nogil=True)
def decode_masks(coefs, protos, mask_boxes, geometry, mode, tradeoff_factor, frame_h, frame_w):  # pragma: no cover
    """Masks of N detections, each cropped to its integer box in source pixels, and their
    COCO run lengths over the whole ``frame_h`` × ``frame_w`` frame, made in the same pass.

    ``geometry`` = (scale_x, scale_y, pad_x, pad_y, in_w, in_h) of the letterbox.
    Returns a flat uint8 buffer and the (N + 1) offsets of each mask in it, then the run
    lengths, flat, and their (N + 1) offsets. Masks are stored column-major (shape
    (x1 - x0, y1 - y0) in memory, i.e. the transpose), the order COCO RLE walks them.
    Each mask column is decided a run at a time, never pixel by pixel: the buffer starts at
    zero and only runs of ones are written.
    """
    sx, sy, pad_x, pad_y, in_w, in_h = geometry[0], geometry[1], geometry[2], geometry[3], geometry[4], geometry[5]
    ph, pw = protos.shape[1], protos.shape[2]
    n = mask_boxes.shape[0]
    offsets = np.zeros(n + 1, np.int64)
    for i in range(n):
        offsets[i + 1] = offsets[i] + (mask_boxes[i, 2] - mask_boxes[i, 0]) * (mask_boxes[i, 3] - mask_boxes[i, 1])
    flat = np.zeros(offsets[n], np.uint8)
    counts = np.empty(64 * n + 64, np.int64)
    run_offsets = np.zeros(n + 1, np.int64)
    # Source pixel centre -> input coordinate -> prototype coordinate (cell centres at integers).
    kx, ky = pw / in_w, ph / in_h
    if mode == MODE_FAST:
        gw, gh = float(pw), float(ph)
    else:
        gw = pw + tradeoff_factor * (in_w - pw)
        gh = ph + tradeoff_factor * (in_h - ph)
    for i in range(n):
        x0, y0, x1, y1 = mask_boxes[i, 0], mask_boxes[i, 1], mask_boxes[i, 2], mask_boxes[i, 3]
        bw, bh = x1 - x0, y1 - y0
        base = run_offsets[i]
        n_runs, run, current = base, 0, 0  # runs written; the open run and its value (zeros first)
        if bw <= 0 or bh <= 0:
            counts = _reserve(counts, base, 1)
            counts[base] = frame_h * frame_w
            run_offsets[i + 1] = base + 1
            continue
        n_runs, run, current = _emit(counts, n_runs, run, current, x0 * frame_h, 0)
        # Prototype window covering the box, one cell of margin for interpolation.
        u0 = ((x0 + 0.5) * sx + pad_x) * kx - 0.5
        u1 = ((x1 - 0.5) * sx + pad_x) * kx - 0.5
        v0 = ((y0 + 0.5) * sy + pad_y) * ky - 0.5
        v1 = ((y1 - 0.5) * sy + pad_y) * ky - 0.5
        px0 = max(0, int(math.floor(u0)) - 1)
        py0 = max(0, int(math.floor(v0)) - 1)
        px1 = min(pw, int(math.floor(u1)) + 3)
        py1 = min(ph, int(math.floor(v1)) + 3)
        logits = _region_logits(coefs[i], protos, px0, py0, px1, py1)
        rows = py1 - py0
        out = flat[offsets[i] : offsets[i + 1]].reshape(bw, bh)  # column-major mask
        col = np.empty(rows, np.float32)
        if mode == MODE_ACCURATE:
            # Separable: interpolate along x once per prototype row, then decide runs of rows.
            cx0, cx1, wx = _column_taps(x0, bw, sx, pad_x, kx, pw, px0)
            ry0, ry1, wy = _column_taps(y0, bh, sy, pad_y, ky, ph, py0)
            starts = _segments(ry0 * (rows + 1) + ry1)
            need = 2 * starts.shape[0] + 4
            by_column = np.ascontiguousarray(logits.T)  # each prototype column contiguous: a vector lerp
            for c in range(bw):
                counts = _reserve(counts, n_runs, need)
                la, lb, t = by_column[cx0[c]], by_column[cx1[c]], wx[c]
                for k in range(rows):
                    col[k] = la[k] + (lb[k] - la[k]) * t
                n_runs, run, current = _emit(counts, n_runs, run, current, y0, 0)
                n_runs, run, current = _column_of_segments(out[c], counts, n_runs, run, current, starts, col, ry0,
                                                           ry1, wy)
                n_runs, run, current = _emit(counts, n_runs, run, current, frame_h - y1, 0)
        else:
            # Grid cells (index in a gw × gh grid over the input) hit by the box's pixels.
            gcol = np.empty(bw, np.int64)
            grow = np.empty(bh, np.int64)
            for c in range(bw):
                gcol[c] = min(int(gw) - 1, max(0, int(math.floor(((x0 + c + 0.5) * sx + pad_x) * gw / in_w))))
            for r in range(bh):
                grow[r] = min(int(gh) - 1, max(0, int(math.floor(((y0 + r + 0.5) * sy + pad_y) * gh / in_h))))
            g0c, g0r = gcol[0], grow[0]
            ncols, nrows = gcol[bw - 1] - g0c + 1, grow[bh - 1] - g0r + 1
            # The grid's pixels first, in a branch-free loop the compiler vectorises; deciding
            # them inside the run walk below was 25 % slower (measured).
            small = np.zeros((ncols, nrows), np.uint8)  # column-major too
            sra = np.empty(nrows, np.int64)
            srb = np.empty(nrows, np.int64)
            swy = np.empty(nrows, np.float32)
            for r in range(nrows):
                ra, rb, wy_ = _bilinear_taps((g0r + r + 0.5) * ph / gh - 0.5, ph)
                sra[r], srb[r], swy[r] = ra - py0, rb - py0, wy_
            for c in range(ncols):
                a, b, t = _bilinear_taps((g0c + c + 0.5) * pw / gw - 0.5, pw)
                a -= px0
                b -= px0
                for k in range(rows):
                    col[k] = logits[k, a] + (logits[k, b] - logits[k, a]) * t
                for r in range(nrows):
                    top = col[sra[r]]
                    small[c, r] = 1 if top + (col[srb[r]] - top) * swy[r] > 0 else 0
            # Each grid column's mask column as runs over the source rows, merged, made once:
            # source columns on the same grid column (several per cell) replay them.
            starts = _segments(grow)
            nseg = starts.shape[0] - 1
            gruns = np.zeros((ncols, nseg + 1), np.int64)  # lengths, alternating, zeros first
            gcount = np.zeros(ncols, np.int64)
            for g in range(ncols):
                sc = small[g]
                k, value = 0, 0
                for s in range(nseg):
                    r0, r1 = starts[s], starts[s + 1]
                    if sc[grow[r0] - g0r] != value:
                        k += 1
                        value = 1 - value
                    gruns[g, k] += r1 - r0
                gcount[g] = k + 1
            need = nseg + 4
            for c in range(bw):
                counts = _reserve(counts, n_runs, need)
                oc = out[c]
                g = gcol[c] - g0c
                n_runs, run, current = _emit(counts, n_runs, run, current, y0, 0)
                r = 0
                for k in range(gcount[g]):
                    length = gruns[g, k]
                    if k % 2:
                        oc[r : r + length] = 1
                    n_runs, run, current = _emit(counts, n_runs, run, current, length, k % 2)
                    r += length
                n_runs, run, current = _emit(counts, n_runs, run, current, frame_h - y1, 0)
        n_runs, run, current = _emit(counts, n_runs, run, current, (frame_w - x1) * frame_h, 0)
        counts = _reserve(counts, n_runs, 1)
        counts[n_runs] = run
        run_offsets[i + 1] = n_runs + 1
    return flat, offsets, counts[: run_offsets[n]], run_offsets


def warm_up() -> None:
    """Compile every kernel for the array types the pipeline passes, before any frame."""
    for channels_first, has_obj in ((True, False), (False, True)):
        shape = (4 + has_obj + 2 + 32, 6) if channels_first else (6, 4 + has_obj + 2 + 32)
        pred = np.random.default_rng(0).random(shape).astype(np.float32)
        # Argument types exactly as CpuKernels passes them, or numba compiles again later.
        idx, score, cls = select_candidates(pred, channels_first, has_obj, 2, np.float32(0.0), np.ones(2, np.bool_))
        boxes = gather_boxes(pred, channels_first, idx)
        for agnostic in (False, True):
            nms(boxes, score, cls, np.float32(0.5), agnostic, 10)
    protos = np.zeros((32, 8, 8), np.float32)
    coefs = np.zeros((1, 32), np.float32)
    geom = np.array([1.0, 1.0, 0.0, 0.0, 32.0, 32.0], np.float64)
    mb = np.array([[2, 2, 6, 6]], np.int32)
    for mode in (MODE_ACCURATE, MODE_TRADEOFF, MODE_FAST):
        decode_masks(coefs, protos, mb, geom, mode, 0.5, 32, 32)


class CpuKernels:
    """The Numba CPU kernels behind the :class:`~pipeline.infer.kernels.base.Kernels` protocol."""

    device = "cpu"

    def outputs(self, backend: Any, blob: np.ndarray) -> list[Any]:
        return list(backend.run(blob))

    def upload(self, array: np.ndarray) -> np.ndarray:
        return array

    def candidates(self, output0: np.ndarray, channels_first: bool, has_objectness: bool, num_classes: int,
                   num_masks: int, confidence: float, allowed: np.ndarray) -> Candidates:
        idx, scores, classes = select_candidates(output0, channels_first, has_objectness, num_classes,
                                                 np.float32(confidence), allowed)
        boxes = gather_boxes(output0, channels_first, idx)
        first = (5 if has_objectness else 4) + num_classes
        return Candidates(scores, classes, boxes, output0, idx, first, channels_first)

    def decode_masks(self, coefs: np.ndarray, protos: np.ndarray, mask_boxes: np.ndarray, geometry: np.ndarray,
                     mode: int, tradeoff_factor: float, frame_hw: tuple[int, int]) -> MaskCrops:
        return MaskCrops(*decode_masks(coefs, protos, mask_boxes, geometry, mode, float(tradeoff_factor),
                                       int(frame_hw[0]), int(frame_hw[1])))

    def warm_up(self) -> None:
        warm_up()
