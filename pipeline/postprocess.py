"""Deprecated location: post-processing moved to :mod:`pipeline.infer.postprocess`.

``from pipeline.postprocess import postprocess_segmentation`` keeps working for now, with
a DeprecationWarning; import from ``pipeline.infer`` instead.
"""

from __future__ import annotations

import warnings

from pipeline.infer.postprocess import PostprocessOptions, PostprocessTimings, postprocess_segmentation

__all__ = ["PostprocessOptions", "PostprocessTimings", "postprocess_segmentation"]

warnings.warn("pipeline.postprocess moved: use `from pipeline.infer import postprocess_segmentation`",
              DeprecationWarning, stacklevel=2)
