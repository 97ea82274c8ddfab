"""What the peer scripts of ``benchmarks/peers.py`` share (``peer_ultralytics.py``,
``peer_rfinference.py``): they run in the peers' own virtualenvs, so this imports nothing of
vidpipe's and nothing outside the standard library at import time.

Each peer script prints one JSON line last (:func:`emit`); ``benchmarks/peers.py`` reads it.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata


def pin_ort_threads(threads: int) -> None:
    """Every ONNX Runtime session opened after this call gets ``threads`` intra-op threads.

    Neither peer lets its caller pass session options on the CPU (Ultralytics' ONNX backend
    passes none; Roboflow's model class builds its own without a thread count), so their
    sessions would take ONNX Runtime's default (the core count): wrapped here instead, so the
    thread count is the same as vidpipe's ``intra_op_threads`` by construction, not by luck.
    """
    import onnxruntime

    plain = onnxruntime.InferenceSession

    class PinnedSession(plain):  # type: ignore[misc, valid-type]
        def __init__(self, path_or_bytes, sess_options=None, *args, **kwargs):
            sess_options = sess_options or onnxruntime.SessionOptions()
            sess_options.intra_op_num_threads = threads
            super().__init__(path_or_bytes, sess_options, *args, **kwargs)

    onnxruntime.InferenceSession = PinnedSession


def torchvision_cpu_shim() -> bool:
    """torchvision from PyPI beside the CPU build of torch (both peers' venvs) cannot load its
    compiled ops, and importing it fails: the shim of ``training/ultralytics_models.py`` (what
    ``make ultralytics-fixtures`` uses) defines ``torchvision::nms`` with Ultralytics' own exact
    NMS first. Called before anything imports torchvision; returns whether it was needed."""
    from training.ultralytics_models import cpu_nms_op

    return cpu_nms_op()


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of those of ``packages`` that are installed."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def first_frame(clip: str):
    """The clip's first frame (BGR), for warming a model up before the clock starts."""
    import cv2

    cap = cv2.VideoCapture(clip)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read a frame from {clip}")
    return frame


def emit(data: dict) -> None:
    """The one line ``benchmarks/peers.py`` reads: the last line of stdout."""
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
