"""One peer row of ``benchmarks/peers.py``: Ultralytics' predictor over an encoded clip.

Runs in Ultralytics' own throwaway virtualenv (``make ultralytics-venv``), never in vidpipe's:
``benchmarks/peers.py`` starts it as a subprocess of that venv's python, with the checkout on
``PYTHONPATH``, and reads the one JSON line it prints last (fps, frames, detections, the
letterboxed input it ran at, versions).

The model loads with a plain ``YOLO(path, task="segment")``, as the model card says, and is
warmed up on the clip's first frame; then the clock runs over ``predict(clip, stream=True)``
from the first frame read to the last result in memory. ``retina_masks=True`` gives masks at
the source resolution (1280×720); the default gives them at the letterbox's resolution.
Ultralytics letterboxes a video to the smallest multiple of 32 (``rect``: 384×640 for 720p)
where vidpipe feeds the network 640×640: recorded in ``input_shapes``; ``--square`` predicts
with ``rect=False``, a 640×640 letterbox like vidpipe's.

Threads: ONNX Runtime's intra-op pool is set to ``--threads``, and so is torch's, which runs
the mask upsampling and NMS (Ultralytics' device setup sets it to the core count - 1).

    PYTHONPATH=. .venv-ultralytics/bin/python benchmarks/peer_ultralytics.py --clip CLIP --model MODEL [--retina]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.peer_common import emit, first_frame, pin_ort_threads, torchvision_cpu_shim, versions

os.environ.setdefault("YOLO_OFFLINE", "1")  # no hub, no update checks: everything is local
os.environ.setdefault("YOLO_VERBOSE", "False")

PACKAGES = ("ultralytics", "torch", "torchvision", "onnxruntime", "opencv-python", "numpy")


def measure(clip: str, model_path: str, retina: bool, threads: int, conf: float, iou: float, rect: bool = True) -> dict:
    pin_ort_threads(threads)
    shim = torchvision_cpu_shim()
    import torch
    from ultralytics import YOLO

    model = YOLO(model_path, task="segment")
    settings = {"conf": conf, "iou": iou, "retina_masks": retina, "verbose": False, "max_det": 300, "rect": rect}
    model.predict(first_frame(clip), **settings)  # loads the session and warms it up
    torch.set_num_threads(threads)  # after the device setup, which set it; predict() keeps it
    predictor = model.predictor
    shapes: set[tuple[int, ...]] = set()
    preprocess = predictor.preprocess

    def recorded(im):  # the letterboxed batch the network sees
        tensor = preprocess(im)
        shapes.add(tuple(int(v) for v in tensor.shape))
        return tensor

    predictor.preprocess = recorded
    frames = detections = 0
    mask_shape: list[int] = []
    t = time.perf_counter()
    for result in model.predict(clip, stream=True, **settings):
        frames += 1
        detections += len(result)
        if result.masks is not None:
            mask_shape = [int(v) for v in result.masks.data.shape[1:]]
    seconds = time.perf_counter() - t
    return {"peer": "ultralytics", "retina_masks": retina, "rect": rect, "frames": frames, "seconds": seconds, "fps": frames / seconds,
            "detections_per_frame": detections / max(frames, 1), "mask_shape": mask_shape, "input_shapes": sorted(shapes),
            "ort_threads": threads, "torch_threads": torch.get_num_threads(), "nms_shim": shim, "versions": versions(PACKAGES)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--retina", action="store_true", help="full-resolution masks (retina_masks=True)")
    parser.add_argument("--square", action="store_true", help="rect=False: a 640×640 letterbox, vidpipe's input size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--conf", type=float, default=0.4)
    parser.add_argument("--iou", type=float, default=0.5)
    args = parser.parse_args(argv)
    emit(measure(args.clip, args.model, args.retina, args.threads, args.conf, args.iou, rect=not args.square))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
