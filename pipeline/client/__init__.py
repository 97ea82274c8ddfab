"""vidpipe's Python client for inference servers speaking Roboflow Inference's v1 HTTP
protocol (``vidpipe serve`` or Roboflow's own), with the API of Roboflow's
``inference-sdk``. Light: importing it loads httpx, NumPy and OpenCV, not ONNX Runtime
or Numba (converting answers to ``Result``/``Detections`` imports vidpipe's vision layer).

Example:
    >>> from pipeline.client import InferenceConfiguration, InferenceHTTPClient
    >>> with InferenceHTTPClient("http://127.0.0.1:9001") as client:
    ...     client.configure(InferenceConfiguration(max_concurrent_requests=4)).inference_configuration.max_concurrent_requests
    4
"""

from __future__ import annotations

from pipeline.client.client import InferenceHTTPClient
from pipeline.client.configuration import InferenceConfiguration
from pipeline.client.entities import ModelDescription, RegisteredModels, ServerInfo
from pipeline.client.errors import (
    HTTPCallErrorError,
    HTTPClientError,
    HTTPServerConnectionError,
    InvalidInputFormatError,
    InvalidParameterError,
    ModelNotInitializedError,
    ModelNotSelectedError,
    ModelTaskTypeNotSupportedError,
)
from pipeline.client.results import to_detections, to_result, to_supervision

__all__ = [
    "HTTPCallErrorError", "HTTPClientError", "HTTPServerConnectionError", "InferenceConfiguration", "InferenceHTTPClient",
    "InvalidInputFormatError", "InvalidParameterError", "ModelDescription", "ModelNotInitializedError", "ModelNotSelectedError",
    "ModelTaskTypeNotSupportedError", "RegisteredModels", "ServerInfo", "to_detections", "to_result", "to_supervision",
]
