"""``vidpipe serve``: an HTTP inference server wire-compatible with Roboflow Inference's v1 routes.

One file per concept: the app and its routes (:mod:`.app`), the model registry
(:mod:`.registry`), the per-model batcher (:mod:`.batcher`), the request bodies
(:mod:`.requests`), image loading and limits (:mod:`.images`, :mod:`.urls`), the API key
(:mod:`.auth`), metrics (:mod:`.metrics`), responses (:mod:`.responses`), server-side
drawing (:mod:`.visualize`), errors (:mod:`.errors`), the command (:mod:`.main`; its
arguments: :mod:`.command`). Needs the ``[serve]`` extra (starlette, uvicorn, httpx).
Nothing is imported here, so the CLI's parser stays light.
"""
