"""One peer row of ``benchmarks/peers.py``: Roboflow ``inference``'s InferencePipeline over an
encoded clip, running the bundled ONNX model through inference's own YOLOv8-seg model class.

Runs in its own throwaway virtualenv (``make rfinference-venv``), never in vidpipe's:
``benchmarks/peers.py`` starts it as a subprocess of that venv's python, with the checkout on
``PYTHONPATH``, and reads the one JSON line it prints last.

The model is inference's own ``YOLOv8InstanceSegmentation`` (pre-processing, the YOLOv8
output transpose, ``w_np_non_max_suppression``, ``process_mask_accurate``, ``masks2poly``,
boxes and polygons scaled back to the frame, ``InstanceSegmentationPrediction`` responses)
with only where its files come from replaced: the artefacts a Roboflow model id would
download (weights, class names, the environment with its preprocessing) are given locally
(:class:`LocalYOLOv8Seg`), and ``OFFLINE_MODE`` keeps inference off the network (no model
fetch, no usage reports, no version check). Its preprocessing is "Fit (grey edges) in" 640×640:
the bundled model's letterbox, the input vidpipe feeds it.

``InferencePipeline.init_with_custom_logic`` reads the file with every frame processed
(``WAIT`` filling, ``LAZY`` consumption: what it chooses for files anyway, set explicitly);
``on_video_frame`` runs the model on each frame batch, ``on_prediction`` keeps the responses
in memory. The clock runs from ``start()`` to ``join()``, after the model has loaded and
warmed up.

    PYTHONPATH=. .venv-rfinference/bin/python benchmarks/peer_rfinference.py --clip CLIP --model MODEL
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from benchmarks.peer_common import emit, first_frame, pin_ort_threads, torchvision_cpu_shim, versions

PACKAGES = ("inference", "inference-models", "streamvision", "onnxruntime", "opencv-python", "numpy", "supervision")
CLASS_NAMES = ("circle", "rectangle", "triangle")  # the bundled model's (pipeline/zoo/MODEL_CARD.md)


def _offline(cache: str) -> None:
    """inference decides its offline mode once, at import: set before it is imported."""
    os.environ["OFFLINE_MODE"] = "True"
    os.environ["MODEL_CACHE_DIR"] = cache
    os.environ["METRICS_ENABLED"] = "False"
    os.environ["DISABLE_VERSION_CHECK"] = "True"
    os.environ["ONNXRUNTIME_EXECUTION_PROVIDERS"] = "[CPUExecutionProvider]"
    os.environ.setdefault("ROBOFLOW_API_KEY", "")


def local_model_class():
    """inference's YOLOv8 instance-segmentation model with its artefacts given locally."""
    from inference.models.yolov8.yolov8_instance_segmentation import YOLOv8InstanceSegmentation

    class LocalYOLOv8Seg(YOLOv8InstanceSegmentation):
        """Everything of the parent's but where the files come from: no model id to fetch."""

        def __init__(self, weights: str, size: int = 640) -> None:
            self._weights, self._size = weights, size
            super().__init__(model_id="vidpipe-shapes/1", api_key=None)

        def get_model_artifacts(self, **kwargs) -> None:  # what load_model_artifacts_from_cache sets
            resize = {"enabled": True, "format": "Fit (grey edges) in", "width": self._size, "height": self._size}
            self.environment = {"PREPROCESSING": {"resize": resize}, "CLASS_MAP": dict(enumerate(CLASS_NAMES))}
            self.class_names = list(CLASS_NAMES)
            self.colors = {}
            self.num_classes = len(self.class_names)
            self.preproc = self.environment["PREPROCESSING"]
            self.resize_method = resize["format"]
            self.multiclass = False

        def cache_file(self, f: str) -> str:
            if f != self.weights_file:
                raise FileNotFoundError(f"LocalYOLOv8Seg has only its weights, not {f}")
            return self._weights

    return LocalYOLOv8Seg


def measure(clip: str, model_path: str, threads: int, conf: float, iou: float) -> dict:
    pin_ort_threads(threads)
    shim = torchvision_cpu_shim()  # inference imports torchvision; its NMS is NumPy's, the shim's is never called
    from inference import InferencePipeline
    from streamvision.camera.video_source import BufferConsumptionStrategy, BufferFillingStrategy

    model = local_model_class()(model_path)  # validates itself: one test inference
    settings = {"confidence": conf, "iou_threshold": iou, "mask_decode_mode": "accurate", "max_detections": 300}
    model.infer(first_frame(clip), **settings)  # warm-up on a real frame
    responses: list = []
    frames_seen: list[int] = []

    def on_video_frame(video_frames):
        frames_seen.extend(f.frame_id for f in video_frames)
        return model.infer([f.image for f in video_frames], **settings)

    def on_prediction(predictions, video_frames):
        responses.extend(p for p in (predictions if isinstance(predictions, list) else [predictions]) if p is not None)

    pipeline = InferencePipeline.init_with_custom_logic(
        video_reference=clip, on_video_frame=on_video_frame, on_prediction=on_prediction,
        source_buffer_filling_strategy=BufferFillingStrategy.WAIT,
        source_buffer_consumption_strategy=BufferConsumptionStrategy.LAZY)
    t = time.perf_counter()
    pipeline.start()
    pipeline.join()
    seconds = time.perf_counter() - t
    frames = len(responses)
    detections = sum(len(r.predictions) for r in responses)
    points = sum(len(p.points) for r in responses for p in r.predictions)
    return {"peer": "rfinference", "frames": frames, "frames_seen": len(set(frames_seen)), "seconds": seconds,
            "fps": frames / seconds, "detections_per_frame": detections / max(frames, 1),
            "polygon_points_per_detection": points / max(detections, 1), "input_size": [model.img_size_h, model.img_size_w],
            "resize": model.resize_method, "mask_decode_mode": "accurate", "ort_threads": threads,
            "torchvision_shim": shim, "versions": versions(PACKAGES)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--conf", type=float, default=0.4)
    parser.add_argument("--iou", type=float, default=0.5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vidpipe-peer-rf-") as cache:
        _offline(cache)
        emit(measure(args.clip, args.model, args.threads, args.conf, args.iou))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
