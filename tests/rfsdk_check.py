"""Roboflow's own ``inference-sdk`` against a live ``vidpipe serve``: run by
tests/test_serve_rfsdk.py under the SDK's virtualenv (``make rfsdk-venv``; its pins conflict
with ours), unchanged: the SDK's defaults, its own encoding (numpy arrays go as base64 JPEG).

    .venv-rfsdk/bin/python tests/rfsdk_check.py URL IMAGE.png [API_KEY [TRANSPORT]]

Prints one JSON object: what each SDK call returned.
"""

from __future__ import annotations


def main(argv: list[str]) -> int:
    import dataclasses
    import json

    import cv2
    from inference_sdk import InferenceConfiguration, InferenceHTTPClient

    url, path = argv[0], argv[1]
    key = argv[2] if len(argv) > 2 else None
    client = InferenceHTTPClient(api_url=url, api_key=key)
    if len(argv) > 3:
        client.configure(InferenceConfiguration(api_key_transport=argv[3]))
    model = "shapes-yolov8seg"
    out = {"info": dataclasses.asdict(client.get_server_info()),
           "load": dataclasses.asdict(client.load_model(model)),
           "listed": dataclasses.asdict(client.list_loaded_models()),
           "path": client.infer(path, model_id=model),
           "array": client.infer(cv2.imread(path), model_id=model),
           "list": client.infer([path, cv2.imread(path)], model_id=model),
           "unload": dataclasses.asdict(client.unload_model(model))}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
