"""Cluster mode: streams placed on Ray actors, each a vidpipe pipeline (README: Running on a
Ray cluster). Nothing here imports Ray until a cluster is joined (:func:`connect`)."""
