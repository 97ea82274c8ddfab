"""Plain NumPy reference of vidpipe's post-processing semantics, and a generator of
realistic raw YOLO-seg outputs. The Numba kernels must match the reference; the
benchmarks time both on the same inputs.
"""

from __future__ import annotations

import numpy as np

from pipeline.infer.letterbox import Letterbox
from pipeline.vision.geometry import mask_boxes

NM = 32


def make_raw_outputs(rng: np.random.Generator, layout: str, n_objects: int, nc: int = 3,
                     input_hw: tuple[int, int] = (640, 640), source_hw: tuple[int, int] = (1080, 1920),
                     candidates_per_object: int = 10, n_anchors: int = 8400,
                     max_size: float = 150.0) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs of ONE image: objects with several overlapping candidates above threshold
    (as a real model produces), background anchors with low scores, smooth prototypes."""
    import cv2

    g = Letterbox.fit(source_hw, input_hw)
    ih, iw = input_hw
    ph, pw = ih // 4, iw // 4
    has_obj = layout.startswith("yolov5")
    first = 5 if has_obj else 4
    pred = np.zeros((n_anchors, first + nc + NM), np.float32)
    pred[:, 0] = rng.uniform(0, iw, n_anchors)
    pred[:, 1] = rng.uniform(0, ih, n_anchors)
    pred[:, 2:4] = rng.uniform(4, 60, (n_anchors, 2))
    pred[:, first : first + nc] = rng.uniform(0, 0.08, (n_anchors, nc))
    if has_obj:
        pred[:, 4] = rng.uniform(0, 0.2, n_anchors)
    pred[:, first + nc :] = rng.normal(0, 1, (n_anchors, NM))
    free = rng.permutation(n_anchors)
    used = 0
    for _ in range(n_objects):
        # Log-uniform 8-150 input px (24-450 px on a 1080p frame): typical object sizes.
        w, h = np.exp(rng.uniform(np.log(8), np.log(max_size), 2))
        cx = rng.uniform(g.pad_x + w / 2, g.pad_x + g.new_w - w / 2)
        cy = rng.uniform(g.pad_y + h / 2, g.pad_y + g.new_h - h / 2)
        c = int(rng.integers(nc))
        coef = rng.normal(0, 1.5, NM)
        for _ in range(candidates_per_object):
            a = free[used]
            used += 1
            pred[a, 0] = cx + rng.normal(0, 0.04 * w)
            pred[a, 1] = cy + rng.normal(0, 0.04 * h)
            pred[a, 2] = w * rng.uniform(0.9, 1.1)
            pred[a, 3] = h * rng.uniform(0.9, 1.1)
            pred[a, first : first + nc] = rng.uniform(0, 0.1, nc)
            pred[a, first + c] = rng.uniform(0.5, 0.95)
            if has_obj:
                pred[a, 4] = rng.uniform(0.8, 1.0)
                pred[a, first + c] = min(1.0, pred[a, first + c] / pred[a, 4])
            pred[a, first + nc :] = coef + rng.normal(0, 0.1, NM)
    small = rng.normal(0, 1, (NM, ph // 8, pw // 8)).astype(np.float32)
    protos = np.stack([cv2.resize(p, (pw, ph), interpolation=cv2.INTER_CUBIC) for p in small])
    out0 = pred.T.copy() if layout.startswith("yolov8") else pred
    return out0, protos


def _bilinear(logits: np.ndarray, py: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Sample ``logits`` (ph, pw) at rows ``py`` × columns ``px`` (clamped at the edges)."""
    ph, pw = logits.shape

    def taps(pos: np.ndarray, size: int):
        f = np.floor(pos)
        w = pos - f
        i0 = f.astype(np.int64)
        i1 = i0 + 1
        low, high = i0 < 0, i1 > size - 1
        i0 = np.where(low, 0, np.where(high, size - 1, i0))
        i1 = np.where(low, 0, np.where(high, size - 1, i1))
        w = np.where(low | high, 0.0, w)
        return i0, i1, w

    y0, y1, wy = taps(py, ph)
    x0, x1, wx = taps(px, pw)
    top = logits[y0][:, x0] + (logits[y0][:, x1] - logits[y0][:, x0]) * wx[None, :]
    bot = logits[y1][:, x0] + (logits[y1][:, x1] - logits[y1][:, x0]) * wx[None, :]
    return top + (bot - top) * wy[:, None]


def reference_mask(coef: np.ndarray, protos: np.ndarray, box: np.ndarray, g: Letterbox, mode: str, tf: float) -> np.ndarray:
    ph, pw = protos.shape[1:]
    logits = np.tensordot(coef.astype(np.float64), protos.astype(np.float64), axes=1)
    x0, y0, x1, y1 = (int(v) for v in box)
    xs = np.arange(x0, x1) + 0.5
    ys = np.arange(y0, y1) + 0.5
    ux = xs * g.scale_x + g.pad_x  # input pixels
    uy = ys * g.scale_y + g.pad_y
    if mode == "accurate":
        vals = _bilinear(logits, uy * ph / g.in_h - 0.5, ux * pw / g.in_w - 0.5)
        return vals > 0
    gw = pw if mode == "fast" else pw + tf * (g.in_w - pw)
    gh = ph if mode == "fast" else ph + tf * (g.in_h - ph)
    col = np.clip(np.floor(ux * gw / g.in_w), 0, int(gw) - 1).astype(np.int64)
    row = np.clip(np.floor(uy * gh / g.in_h), 0, int(gh) - 1).astype(np.int64)
    vals = _bilinear(logits, (row + 0.5) * ph / gh - 0.5, (col + 0.5) * pw / gw - 0.5)
    return vals > 0


def reference_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, agnostic: bool, max_det: int) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    keep = []
    alive = np.ones(len(order), bool)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for k, i in enumerate(order):
        if not alive[k] or len(keep) >= max_det:
            continue
        keep.append(i)
        rest = order[k + 1 :]
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.clip(rb - lt, 0, None).prod(1)
        ious = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        same = np.ones(len(rest), bool) if agnostic else classes[rest] == classes[i]
        alive[k + 1 :] &= ~((ious > iou) & same)
    return np.array(keep, np.int64)


def reference_postprocess(output0: np.ndarray, protos: np.ndarray | None, layout: str, input_hw, source_hw,
                          confidence=0.4, iou_threshold=0.3, class_agnostic_nms=False, max_detections=300,
                          max_candidates=3000, allowed=None, mask_decode_mode="accurate", tradeoff_factor=0.5,
                          max_area_ratio=None):
    """Same semantics as pipeline.infer.postprocess.postprocess_segmentation, in plain NumPy."""
    pred = output0.T if layout.startswith("yolov8") else output0
    has_obj = layout.startswith("yolov5")
    first = 5 if has_obj else 4
    nm = 0 if protos is None else protos.shape[0]
    nc = pred.shape[1] - first - nm
    cls_scores = pred[:, first : first + nc]
    cls = np.argmax(cls_scores, axis=1)
    best = cls_scores[np.arange(len(pred)), cls]
    obj = pred[:, 4] if has_obj else np.ones(len(pred), np.float32)
    score = (best * obj).astype(np.float32)
    allowed = np.ones(nc, bool) if allowed is None else allowed
    ok = (score >= np.float32(confidence)) & allowed[cls]
    if has_obj:
        ok &= obj >= np.float32(confidence)
    idx = np.flatnonzero(ok)
    g = Letterbox.fit(source_hw, input_hw)
    xywh = pred[idx, :4]
    boxes_in = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1).astype(np.float32)
    boxes_src = g.to_source_xyxy(boxes_in)
    sc, cl = score[idx], cls[idx]
    if max_area_ratio is not None:
        wh = boxes_src[:, 2:] - boxes_src[:, :2]
        small = wh[:, 0] * wh[:, 1] <= max_area_ratio * g.src_h * g.src_w
        idx, boxes_in, boxes_src, sc, cl = idx[small], boxes_in[small], boxes_src[small], sc[small], cl[small]
    if len(idx) > max_candidates:
        top = np.argsort(-sc, kind="stable")[:max_candidates]
        idx, boxes_in, boxes_src, sc, cl = idx[top], boxes_in[top], boxes_src[top], sc[top], cl[top]
    keep = reference_nms(boxes_in, sc, cl, iou_threshold, class_agnostic_nms, max_detections)
    xyxy = boxes_src[keep]
    masks = None
    if protos is not None:
        mb = mask_boxes(xyxy, (g.src_h, g.src_w))
        coefs = pred[idx[keep], first + nc :]
        masks = [reference_mask(coefs[i], protos, mb[i], g, mask_decode_mode, tradeoff_factor) for i in range(len(keep))]
    return {"xyxy": xyxy, "confidence": sc[keep], "class_id": cl[keep], "masks": masks, "anchors": idx[keep]}
