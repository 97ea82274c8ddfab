"""Inference: the batching stage, models and their backends, output decoders per task, and
the post-processing kernels (CPU and CUDA).

Example:
    >>> from pipeline.infer import Model, postprocess_segmentation
"""

from __future__ import annotations

from pipeline.infer.config import BatchingConfig, ModelConfig, PostprocessOptions
from pipeline.infer.model import Model
from pipeline.infer.postprocess import postprocess_segmentation

__all__ = ["BatchingConfig", "Model", "ModelConfig", "PostprocessOptions", "postprocess_segmentation"]
