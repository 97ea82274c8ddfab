"""The per-task parts of each output format: the keypoints of a pose model's detections,
a classification model's classes and a semantic segmentation model's segments.

* ``vidpipe``: per detection ``keypoints`` ``[[x, y, confidence], ...]`` (the names once
  in the envelope, ``keypoint_names``); an envelope ``classification`` ``{top,
  confidence, predictions: [{class, class_id, confidence}, ...]}`` (best first) and
  ``semantic`` ``[{class, class_id, share, rle}, ...]`` (one full-frame COCO RLE per class
  present, ``share`` its fraction of the frame);
* ``roboflow``: as Roboflow Inference answers: keypoint predictions carry ``keypoints``
  ``[{x, y, confidence, class_id, class}]``; a classification is ``predictions`` ``[{class,
  class_id, confidence}]`` with ``top`` and ``confidence``; a semantic segmentation is
  ``predictions`` ``{segmentation_mask, class_map, confidence_mask}`` (base64 PNGs of the
  class of each pixel and of its confidence, 0-255; without per-pixel confidences from the
  model, 255 wherever a class is reported);
* ``instill``: Instill Model's task outputs: TASK_KEYPOINT objects carry ``keypoints``
  ``[{x, y, v}]`` (``v``: the keypoint's confidence), TASK_CLASSIFICATION is ``category``
  and ``score`` (the top class), TASK_SEMANTIC_SEGMENTATION is ``stuffs`` ``[{rle,
  category}]`` (``rle``: COCO compressed counts of the full frame).

Frame-level answers are read from the detections' optional ``classification`` and
``semantic`` attributes, keypoints from ``keypoints`` (N, K, 3) and ``keypoint_names``.

Example:
    >>> kp = np.array([[10.004, 20.0, 0.91234], [0.0, 0.0, 0.0]], np.float32)
    >>> vidpipe_keypoints(kp)
    [[10.0, 20.0, 0.9123], [0.0, 0.0, 0.0]]
    >>> instill_keypoints(kp)[0]
    {'x': 10.0, 'y': 20.0, 'v': 0.9123}
    >>> roboflow_keypoints(kp, ("nose",))[1]["class"]
    '1'
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from pipeline.wire.protocols import ClassificationView, DetectionsView, SemanticView


def keypoints_of(dets: DetectionsView) -> npt.NDArray[np.float32] | None:
    """The detections' (N, K, 3) keypoints, or None (not a pose model's)."""
    kp = getattr(dets, "keypoints", None)
    return None if kp is None else np.asarray(kp, np.float32)


def _name(names: Sequence[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) else str(i)


def _point(x: float, y: float) -> tuple[float, float]:
    return round(float(x), 2), round(float(y), 2)


def vidpipe_keypoints(kp: npt.NDArray[Any]) -> list[list[float]]:
    """One detection's (K, 3) keypoints as ``[[x, y, confidence], ...]``."""
    return [[*_point(x, y), round(float(c), 4)] for x, y, c in kp.tolist()]


def roboflow_keypoints(kp: npt.NDArray[Any], names: Sequence[str]) -> list[dict[str, Any]]:
    """One detection's keypoints as Roboflow's ``Keypoint`` objects (``class_id``: the
    keypoint's index, ``class``: its name)."""
    out = []
    for k, (x, y, c) in enumerate(kp.tolist()):
        px, py = _point(x, y)
        out.append({"x": px, "y": py, "confidence": round(float(c), 4), "class_id": k, "class": _name(names, k)})
    return out


def instill_keypoints(kp: npt.NDArray[Any]) -> list[dict[str, float]]:
    """One detection's keypoints as Instill's ``{x, y, v}``."""
    out = []
    for x, y, c in kp.tolist():
        px, py = _point(x, y)
        out.append({"x": px, "y": py, "v": round(float(c), 4)})
    return out


def _classification(dets: DetectionsView, fmt: str) -> dict[str, Any]:
    cls: ClassificationView | None = getattr(dets, "classification", None)
    if cls is None:
        return {}
    names = list(cls.category)
    preds = [{"class": n, "class_id": int(c), "confidence": round(float(s), 4)}
             for n, c, s in zip(names, np.asarray(cls.class_id).tolist(), np.asarray(cls.confidence).tolist())]
    top, conf = (preds[0]["class"], preds[0]["confidence"]) if preds else (None, None)
    if fmt == "roboflow":  # Roboflow answers "" and 0.0 when nothing passed the threshold
        return {"predictions": preds, "top": top or "", "confidence": conf or 0.0}
    if fmt == "instill":
        return {"category": top or "", "score": conf or 0.0}
    return {"classification": {"top": top, "confidence": conf, "predictions": preds}}


def _png(image: npt.NDArray[Any]) -> str:
    ok, data = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - a 2-D uint8/uint16 array always encodes
        raise ValueError("could not encode a PNG")
    return base64.b64encode(data.tobytes()).decode("ascii")


def _roboflow_semantic(sem: SemanticView) -> dict[str, Any]:
    """Roboflow's ``SemanticSegmentationPrediction``: class ids as pixel values (8-bit
    PNG, 16-bit beyond 255 classes), ``class_map`` value → name for every class known."""
    class_map = np.asarray(sem.class_map)
    ids = [int(c) for c in np.asarray(sem.class_ids).tolist()]
    known = list(range(len(sem.class_names))) or ids
    dtype = np.uint8 if max([*known, *ids, 0]) < 256 else np.uint16
    reported = np.isin(class_map, ids)
    pixels = np.where(reported, class_map, 0).astype(dtype)
    conf = getattr(sem, "confidence", None)
    confidence = (np.clip(conf, 0, 1) * 255).round() if conf is not None else np.full(class_map.shape, 255)
    confidence = np.where(reported, confidence, 0).astype(np.uint8)
    names = list(sem.class_names)
    return {"segmentation_mask": _png(pixels), "class_map": {str(c): _name(names, c) for c in sorted({*known, *ids})},
            "confidence_mask": _png(confidence)}


def _semantic(dets: DetectionsView, fmt: str) -> dict[str, Any]:
    sem: SemanticView | None = getattr(dets, "semantic", None)
    if sem is None:
        return {}
    if fmt == "roboflow":
        return {"predictions": _roboflow_semantic(sem)}
    rles, names = sem.rle(), list(sem.category)
    if fmt == "instill":
        return {"stuffs": [{"rle": r["counts"], "category": n} for r, n in zip(rles, names)]}
    return {"semantic": [{"class": n, "class_id": int(c), "share": round(float(s), 6), "rle": r}
                         for n, c, s, r in zip(names, np.asarray(sem.class_ids).tolist(), np.asarray(sem.share).tolist(), rles)]}


def task_fields(dets: DetectionsView, fmt: str) -> dict[str, Any]:
    """The envelope fields of the detections' task in format ``fmt``: ``keypoint_names``
    (pose models that name their keypoints), and a classification's or semantic
    segmentation's fields (for ``roboflow``, they replace ``predictions``)."""
    out: dict[str, Any] = {}
    names = list(getattr(dets, "keypoint_names", ()) or ())
    if keypoints_of(dets) is not None and names:
        out["keypoint_names"] = names
    out.update(_classification(dets, fmt))
    out.update(_semantic(dets, fmt))
    return out
