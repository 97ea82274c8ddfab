"""vidpipe: streaming video analytics — sources, decoding, batched YOLO-seg inference,
Numba post-processing, tracking and sinks, as threads joined by bounded rings."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.app.pipeline import Pipeline
    from pipeline.vision.detections import Detections
    from pipeline.vision.result import Result

__all__ = ["Detections", "Pipeline", "Result", "__version__"]


def __getattr__(name: str):
    # Lazy: `import pipeline` stays cheap (no onnxruntime/numba import) for tools and CLIs.
    if name == "Pipeline":
        from pipeline.app.pipeline import Pipeline

        return Pipeline
    if name == "Detections":
        from pipeline.vision.detections import Detections

        return Detections
    if name == "Result":
        from pipeline.vision.result import Result

        return Result
    raise AttributeError(name)
