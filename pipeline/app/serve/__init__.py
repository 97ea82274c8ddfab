"""``vidpipe serve``: an HTTP inference server wire-compatible with Roboflow Inference's v1 routes.

One file per concept: the app and its routes (:mod:`.app`), the model registry
(:mod:`.registry`), the per-model batcher (:mod:`.batcher`), the request bodies
(:mod:`.requests`), image loading and limits (:mod:`.images`, :mod:`.urls`), the API key
(:mod:`.auth`), metrics (:mod:`.metrics`), responses (:mod:`.responses`), server-side
drawing (:mod:`.visualize`), errors (:mod:`.errors`), the command (:mod:`.main`).
Needs the ``[serve]`` extra (starlette, uvicorn, httpx).
"""

from __future__ import annotations

from pipeline.app.serve.config import ServeConfig, load_serve_config

__all__ = ["ServeConfig", "load_serve_config"]
