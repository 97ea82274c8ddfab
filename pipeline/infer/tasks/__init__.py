"""Output decoders per model task, behind one protocol (:class:`OutputDecoder`)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.infer.config import PostprocessOptions
from pipeline.infer.kernels import Kernels
from pipeline.infer.layouts import ModelLayout
from pipeline.infer.tasks.base import OutputDecoder, PostprocessTimings
from pipeline.infer.tasks.segmentation import SegmentationDecoder, allowed_classes

__all__ = ["OutputDecoder", "PostprocessTimings", "SegmentationDecoder", "allowed_classes", "decoder_for"]


def decoder_for(layout: ModelLayout, options: PostprocessOptions, class_names: Sequence[str],
                kernels: Kernels) -> OutputDecoder:
    """The decoder of ``layout``'s task, chosen once when the model loads. Every layout
    recognised today (YOLOv5/YOLOv8, with or without masks) is instance segmentation or
    detection; the model-families work adds pose, classification and semantic segmentation."""
    return SegmentationDecoder(layout, options, class_names, kernels)
