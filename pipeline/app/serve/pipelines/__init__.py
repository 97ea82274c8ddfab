"""Pipelines run inside ``vidpipe serve``, managed over HTTP (issue 17).

One file per concept: the manager and its Python API (:mod:`.manager`; one pipeline and its
thread: :mod:`.managed`), the bounded buffer of each pipeline's records (:mod:`.buffer`),
the HTTP routes (:mod:`.routes`), the state file (:mod:`.state`) and the ``vidpipe streams``
command (:mod:`.cli`, light: httpx only).
"""
