"""The model registry and server routes of the client: ``get_server_info``,
``list_loaded_models``, ``load_model``, ``unload_model``, ``unload_all_models`` and
``get_model_description``, each with its ``*_async`` twin (a mixin of
:class:`~pipeline.client.client.InferenceHTTPClient`; see it for an example).

Descriptions are cached per model id (``infer`` needs the task type and input size of
every call's model; ``inference-sdk`` asks the registry each time): unloading through
this client, or an error 404 from the server, forgets them.
"""

from __future__ import annotations

from typing import Any

from pipeline.client.auth import key_channels
from pipeline.client.configuration import InferenceConfiguration
from pipeline.client.entities import ModelDescription, RegisteredModels, ServerInfo
from pipeline.client.errors import ModelNotInitializedError
from pipeline.client.transport import Call, Transport


class ModelRegistryMixin:
    """Registry routes; the client provides the attributes declared here."""

    _transport: Transport
    _api_key: str | None
    _config: InferenceConfiguration
    _selected_model: str | None
    _descriptions: dict[str, ModelDescription]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Call:
        """A request with the API key where the configuration sends it (the body of a
        POST, the query of a GET, and/or the header)."""
        headers, body_key, query_key = key_channels(self._api_key, self._config.api_key_transport)
        if method == "GET":
            return Call(method, path, None, query_key or None, headers)
        return Call(method, path, {**(body or {}), **body_key} or None, None, headers)

    def _forget(self, model_id: str | None = None) -> None:
        if model_id is None:
            self._descriptions.clear()
            self._selected_model = None
        else:
            self._descriptions.pop(model_id, None)
            if self._selected_model == model_id:
                self._selected_model = None

    def get_server_info(self) -> ServerInfo:
        """``GET /info``: the server's name, version and instance id."""
        return ServerInfo.from_dict(self._transport.send(Call("GET", "/info"), self._config.timeout_s))

    async def get_server_info_async(self) -> ServerInfo:
        """:meth:`get_server_info`, asynchronously."""
        return ServerInfo.from_dict(await self._transport.send_async(Call("GET", "/info"), self._config.timeout_s))

    def list_loaded_models(self) -> RegisteredModels:
        """``GET /model/registry``: the models the server has loaded."""
        return RegisteredModels.from_dict(self._transport.send(self._call("GET", "/model/registry"), self._config.timeout_s))

    async def list_loaded_models_async(self) -> RegisteredModels:
        """:meth:`list_loaded_models`, asynchronously."""
        answer = await self._transport.send_async(self._call("GET", "/model/registry"), self._config.timeout_s)
        return RegisteredModels.from_dict(answer)

    def _loaded(self, answer: Any, model_id: str, set_as_default: bool) -> RegisteredModels:
        registered = RegisteredModels.from_dict(answer)
        if set_as_default:
            self._selected_model = model_id
        return registered

    def load_model(self, model_id: str, set_as_default: bool = False) -> RegisteredModels:
        """``POST /model/add``: load ``model_id`` (``set_as_default``: select it too)."""
        answer = self._transport.send(self._call("POST", "/model/add", {"model_id": model_id}), self._config.timeout_s)
        return self._loaded(answer, model_id, set_as_default)

    async def load_model_async(self, model_id: str, set_as_default: bool = False) -> RegisteredModels:
        """:meth:`load_model`, asynchronously."""
        call = self._call("POST", "/model/add", {"model_id": model_id})
        return self._loaded(await self._transport.send_async(call, self._config.timeout_s), model_id, set_as_default)

    def unload_model(self, model_id: str) -> RegisteredModels:
        """``POST /model/remove``: unload ``model_id`` (unselected if it was selected)."""
        answer = self._transport.send(self._call("POST", "/model/remove", {"model_id": model_id}), self._config.timeout_s)
        self._forget(model_id)
        return RegisteredModels.from_dict(answer)

    async def unload_model_async(self, model_id: str) -> RegisteredModels:
        """:meth:`unload_model`, asynchronously."""
        call = self._call("POST", "/model/remove", {"model_id": model_id})
        answer = await self._transport.send_async(call, self._config.timeout_s)
        self._forget(model_id)
        return RegisteredModels.from_dict(answer)

    def unload_all_models(self) -> RegisteredModels:
        """``POST /model/clear``: unload every model (and unselect the selected one)."""
        answer = self._transport.send(self._call("POST", "/model/clear"), self._config.timeout_s)
        self._forget()
        return RegisteredModels.from_dict(answer)

    async def unload_all_models_async(self) -> RegisteredModels:
        """:meth:`unload_all_models`, asynchronously."""
        answer = await self._transport.send_async(self._call("POST", "/model/clear"), self._config.timeout_s)
        self._forget()
        return RegisteredModels.from_dict(answer)

    def _described(self, model_id: str, registered: RegisteredModels) -> ModelDescription | None:
        found = registered.find(model_id)
        if found is not None:
            self._descriptions[model_id] = found
        return found

    def get_model_description(self, model_id: str, allow_loading: bool = True) -> ModelDescription:
        """The registry's description of ``model_id``, loading it first when it is not
        loaded and ``allow_loading``; ModelNotInitializedError otherwise."""
        if model_id in self._descriptions:
            return self._descriptions[model_id]
        found = self._described(model_id, self.list_loaded_models())
        if found is None and allow_loading:
            found = self._described(model_id, self.load_model(model_id))
        if found is None:
            raise ModelNotInitializedError(f"model {model_id!r} is not loaded on {self._transport.api_url}")
        return found

    async def get_model_description_async(self, model_id: str, allow_loading: bool = True) -> ModelDescription:
        """:meth:`get_model_description`, asynchronously."""
        if model_id in self._descriptions:
            return self._descriptions[model_id]
        found = self._described(model_id, await self.list_loaded_models_async())
        if found is None and allow_loading:
            found = self._described(model_id, await self.load_model_async(model_id))
        if found is None:
            raise ModelNotInitializedError(f"model {model_id!r} is not loaded on {self._transport.api_url}")
        return found
