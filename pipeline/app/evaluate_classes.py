"""Classification accuracy of a run against the objects of a COCO-style ground truth.

A frame's label is the category of the largest visible object in it: the annotation with
the largest ``area`` (visible pixels in the synthetic world's ground truth; the box's
area when an annotation has none), the first in file order on a tie. Frames with no
object have no label and are skipped (counted in ``frames_without_object``).

Top-1 accuracy is the share of labelled frames whose best class (by confidence) is the
label, top-5 the share whose five best classes include it; classes are matched to the
ground truth's categories by name. A labelled frame without a classification in the
results counts as wrong (``unanswered_frames``). Only the classes the results sent are
looked at: with ``top_k`` under 5, top-5 accuracy is over those; Instill's
TASK_CLASSIFICATION sends only the best class, so there top-5 equals top-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.wire.parse import ResultRecord


def frame_labels(gt: dict) -> dict[int, str]:
    """Frame index -> the category name of its largest visible object (frames with none left out)."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    image_frame = {img["id"]: img.get("frame_index", img["id"]) for img in gt["images"]}
    best: dict[int, tuple[float, str]] = {}
    for a in gt["annotations"]:
        frame = image_frame.get(a["image_id"])
        if frame is None:
            continue
        area = a.get("area", a["bbox"][2] * a["bbox"][3])
        if frame not in best or area > best[frame][0]:
            best[frame] = (area, names.get(a["category_id"], str(a["category_id"])))
    return {frame: name for frame, (_, name) in best.items()}


def classification_accuracy(gt: dict, records: Sequence[ResultRecord]) -> dict[str, Any]:
    """Top-1 and top-5 accuracy of the records' classifications against :func:`frame_labels`."""
    labels = frame_labels(gt)
    answers = {r.frame: r.classification for r in records if r.classification is not None}
    top1 = top5 = unanswered = 0
    for frame, label in labels.items():
        cls = answers.get(frame)
        if cls is None:
            unanswered += 1
            continue
        order = np.argsort(-cls.confidence, kind="stable")  # best first, whatever order was sent
        ranked = [cls.category[i] for i in order[:5]]
        top1 += ranked[:1] == [label]
        top5 += label in ranked
    n = len(labels)
    return {"top1_accuracy": round(top1 / n, 4) if n else None, "top5_accuracy": round(top5 / n, 4) if n else None,
            "labelled_frames": n, "unanswered_frames": unanswered,
            "frames_without_object": len(gt["images"]) - n}
