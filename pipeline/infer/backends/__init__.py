"""Inference backends: ONNX Runtime (CPU, CUDA, TensorRT execution providers)."""
