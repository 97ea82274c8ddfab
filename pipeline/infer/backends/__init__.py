"""Inference backends behind one protocol (:class:`~pipeline.infer.backends.base.Backend`):
ONNX Runtime (CPU, CUDA and TensorRT execution providers) and native TensorRT."""
