"""``InferenceHTTPClient``: vidpipe's client for servers speaking Roboflow Inference's v1
HTTP protocol (``vidpipe serve``, or Roboflow's own inference server), with the API of
Roboflow's ``inference_sdk.InferenceHTTPClient``.

Example:
    >>> from pipeline.client import InferenceConfiguration, InferenceHTTPClient
    >>> client = InferenceHTTPClient("http://127.0.0.1:9001", api_key="KEY")
    >>> with client.use_model("shapes-yolov8seg") as c, c.use_configuration(InferenceConfiguration(confidence_threshold=0.5)):
    ...     c.selected_model, c.inference_configuration.confidence_threshold
    ('shapes-yolov8seg', 0.5)
    >>> client.selected_model, client.inference_configuration.confidence_threshold
    (None, None)
    >>> client.select_model("shapes-yolov8seg").infer("frame.jpg")["predictions"]  # doctest: +SKIP
    [{'x': 320.5, 'y': 200.0, 'width': 41.0, 'height': 40.0, 'confidence': 0.93, 'class': 'circle', ...}]
    >>> client.close()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

import numpy as np

from pipeline.client.auth import key_channels
from pipeline.client.configuration import InferenceConfiguration
from pipeline.client.entities import TASK_ROUTES, ModelDescription
from pipeline.client.errors import HTTPCallErrorError, HTTPClientError, ModelNotSelectedError, ModelTaskTypeNotSupportedError
from pipeline.client.images import Encoded, ImagesReference, encode_inputs
from pipeline.client.registry import ModelRegistryMixin
from pipeline.client.responses import finish
from pipeline.client.streams import frames_of
from pipeline.client.transport import Call, Retry, Transport


class InferenceHTTPClient(ModelRegistryMixin):
    """A client of one inference server at ``api_url`` (``api_key``: when it wants one).

    ``infer`` / ``infer_async`` take one image reference (path, URL, base64, bytes, BGR
    array, PIL image) or a list, and answer a dict per image in Roboflow's layout (a list
    for a list of several); ``infer_on_stream`` runs a video file or an image folder.
    ``select_model`` and ``configure`` set the model and options (chainable);
    ``use_model`` and ``use_configuration`` set them for a ``with`` block. The registry
    routes are in :class:`~pipeline.client.registry.ModelRegistryMixin`. Answers convert
    with :mod:`pipeline.client.results` (``to_result``, ``to_detections``,
    ``to_supervision``). The client holds a connection pool: ``close()`` it, or use it
    as a context manager.
    """

    def __init__(self, api_url: str, api_key: str | None = None) -> None:
        self._transport = Transport(api_url)
        self._api_key = api_key
        self._config = InferenceConfiguration()
        self._selected_model: str | None = None
        self._descriptions: dict[str, ModelDescription] = {}

    @classmethod
    def init(cls, api_url: str, api_key: str | None = None) -> InferenceHTTPClient:
        """A new client (as ``inference-sdk``'s ``init``)."""
        return cls(api_url, api_key)

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def __enter__(self) -> InferenceHTTPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_url(self) -> str:
        """The server's base URL."""
        return self._transport.api_url

    @property
    def inference_configuration(self) -> InferenceConfiguration:
        """The options requests are sent with."""
        return self._config

    @property
    def selected_model(self) -> str | None:
        """The model ``infer`` uses when given no ``model_id``."""
        return self._selected_model

    def configure(self, inference_configuration: InferenceConfiguration) -> InferenceHTTPClient:
        """Use ``inference_configuration`` from now on; returns the client (chainable)."""
        self._config = inference_configuration
        return self

    @contextmanager
    def use_configuration(self, inference_configuration: InferenceConfiguration) -> Iterator[InferenceHTTPClient]:
        """Use ``inference_configuration`` inside a ``with`` block, then the previous one."""
        previous, self._config = self._config, inference_configuration
        try:
            yield self
        finally:
            self._config = previous

    def select_model(self, model_id: str) -> InferenceHTTPClient:
        """Use ``model_id`` when ``infer`` is given none; returns the client (chainable)."""
        self._selected_model = model_id
        return self

    @contextmanager
    def use_model(self, model_id: str) -> Iterator[InferenceHTTPClient]:
        """Use ``model_id`` inside a ``with`` block, then the previously selected one."""
        previous, self._selected_model = self._selected_model, model_id
        try:
            yield self
        finally:
            self._selected_model = previous

    # -- inference ---------------------------------------------------------------------------

    def _model_id(self, model_id: str | None) -> str:
        chosen = model_id or self._selected_model
        if not chosen:
            raise ModelNotSelectedError("no model: pass model_id=... or select one (select_model / use_model)")
        return chosen

    def _max_hw(self, description: ModelDescription) -> tuple[int, int] | None:
        if self._config.client_downsizing_disabled:
            return None
        if description.input_height and description.input_width:
            return int(description.input_height), int(description.input_width)
        return self._config.default_max_input_size, self._config.default_max_input_size

    def _calls(self, description: ModelDescription, encoded: list[Encoded]) -> list[Call]:
        """One request per ``max_batch_size`` images, to the route of the model's task."""
        route = TASK_ROUTES.get(description.task_type)
        if route is None:
            raise ModelTaskTypeNotSupportedError(f"model {description.model_id!r} is a {description.task_type!r} model: "
                                                 f"no v1 image route (known: {', '.join(TASK_ROUTES)})")
        headers, body_key, _ = key_channels(self._api_key, self._config.api_key_transport)
        fields = {"model_id": description.model_id, **body_key, **self._config.to_request_fields(description.task_type)}
        size = self._config.max_batch_size
        calls = []
        for start in range(0, len(encoded), size):
            images = [{"type": "base64", "value": b64} for b64, _ in encoded[start:start + size]]
            calls.append(Call("POST", route, {**fields, "image": images if len(images) > 1 else images[0]}, None, headers))
        return calls

    def _collect(self, answers: list[Any], encoded: list[Encoded]) -> list[Any]:
        """One answer per image, in order, each scaled back and its visualisation converted."""
        flat = [a for answer in answers for a in (answer if isinstance(answer, list) else [answer])]
        if len(flat) != len(encoded):
            raise HTTPClientError(f"the server answered {len(flat)} predictions for {len(encoded)} images")
        return [finish(a, scale, self._config.output_visualisation_format) for a, (_, scale) in zip(flat, encoded)]

    def _retry(self) -> Retry:
        return Retry(self._config.max_retries, self._config.retry_interval_s)

    def _forget_on_404(self, model_id: str, exc: HTTPCallErrorError) -> None:
        if exc.status_code == 404:  # unloaded behind our back: describe (and load) it again next time
            self._descriptions.pop(model_id, None)

    def infer_many(self, images: list[ImagesReference], model_id: str | None = None) -> list[dict[str, Any]]:
        """One answer per image of ``images``, always a list (``infer`` unwraps one)."""
        model = self._model_id(model_id)
        description = self.get_model_description(model)
        encoded = encode_inputs(images, self._max_hw(description), self._config.image_encoding, self._transport.fetch)
        try:
            answers = self._transport.send_many(self._calls(description, encoded), self._config.max_concurrent_requests,
                                                self._config.timeout_s, self._retry())
        except HTTPCallErrorError as exc:
            self._forget_on_404(model, exc)
            raise
        return self._collect(answers, encoded)

    async def infer_many_async(self, images: list[ImagesReference], model_id: str | None = None) -> list[dict[str, Any]]:
        """:meth:`infer_many`, asynchronously."""
        model = self._model_id(model_id)
        description = await self.get_model_description_async(model)
        encoded: list[Encoded] = []
        for image in images:  # URLs are fetched off the event loop
            data = await self._transport.fetch_async(image) if isinstance(image, str) and _is_url(image) else image
            encoded += encode_inputs(data, self._max_hw(description), self._config.image_encoding)
        try:
            answers = await self._transport.send_many_async(self._calls(description, encoded),
                                                            self._config.max_concurrent_requests, self._config.timeout_s,
                                                            self._retry())
        except HTTPCallErrorError as exc:
            self._forget_on_404(model, exc)
            raise
        return self._collect(answers, encoded)

    def infer(self, inference_input: ImagesReference | list[ImagesReference], model_id: str | None = None) -> Any:
        """The answer for one image (a dict in Roboflow's layout), or a list of answers for
        a list of images (one image in a list: its dict, as ``inference-sdk`` does).
        Requests of ``max_batch_size`` images, ``max_concurrent_requests`` at a time."""
        images = list(inference_input) if isinstance(inference_input, (list, tuple)) else [inference_input]
        answers = self.infer_many(images, model_id)
        return answers[0] if len(answers) == 1 else answers

    async def infer_async(self, inference_input: ImagesReference | list[ImagesReference], model_id: str | None = None) -> Any:
        """:meth:`infer`, asynchronously."""
        images = list(inference_input) if isinstance(inference_input, (list, tuple)) else [inference_input]
        answers = await self.infer_many_async(images, model_id)
        return answers[0] if len(answers) == 1 else answers

    def infer_on_stream(self, input_uri: str, model_id: str | None = None) -> Iterator[tuple[int | str, np.ndarray, dict[str, Any]]]:
        """(frame index, frame, answer) for each frame of a video file, or (path, image,
        answer) for each image of a folder (``image_extensions_for_directory_scan``), in
        order; ``max_concurrent_requests`` x ``max_batch_size`` frames are in flight at once."""
        model = self._model_id(model_id)
        frames = frames_of(input_uri, self._config.image_extensions_for_directory_scan)
        chunk = self._config.max_concurrent_requests * self._config.max_batch_size
        while True:
            group = list(islice(frames, chunk))
            if not group:
                return
            answers = self.infer_many([frame for _, frame in group], model)
            for (reference, frame), answer in zip(group, answers):
                yield reference, frame, answer


def _is_url(reference: object) -> bool:
    return isinstance(reference, str) and reference.startswith(("http://", "https://"))
