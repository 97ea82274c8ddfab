"""Output decoders per model task, behind one protocol (:class:`OutputDecoder`)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import Kernels
from pipeline.infer.layouts import ModelLayout
from pipeline.infer.tasks.base import OutputDecoder, PostprocessTimings, StreamState
from pipeline.infer.tasks.classification import ClassificationDecoder
from pipeline.infer.tasks.end2end import EndToEndDecoder
from pipeline.infer.tasks.pose import PoseDecoder
from pipeline.infer.tasks.segmentation import SegmentationDecoder, allowed_classes
from pipeline.infer.tasks.semantic import SemanticDecoder

__all__ = ["ClassificationDecoder", "EndToEndDecoder", "OutputDecoder", "PoseDecoder", "PostprocessTimings",
           "SegmentationDecoder", "SemanticDecoder", "StreamState", "allowed_classes", "decoder_for"]


def decoder_for(layout: ModelLayout, options: PostprocessOptions, class_names: Sequence[str],
                kernels: Kernels, keypoint_names: Sequence[str] = ()) -> OutputDecoder:
    """The decoder of ``layout``'s task, chosen once when the model loads."""
    if layout.end_to_end:
        return EndToEndDecoder(layout, options, class_names, kernels, keypoint_names)
    if layout.task == "pose":
        return PoseDecoder(layout, options, class_names, kernels, keypoint_names)
    if layout.task == "classify":
        return ClassificationDecoder(layout, options, class_names)
    if layout.task == "semantic":
        return SemanticDecoder(layout, class_names)
    return SegmentationDecoder(layout, options, class_names, kernels)
