"""Roboflow's own ``inference-sdk`` doing what tests/test_client_wire.py has vidpipe's client
do, against that test's recording server: run under the SDK's virtualenv (``make
rfsdk-venv``), unchanged.

    .venv-rfsdk/bin/python tests/client_wire_sdk.py URL IMAGE.png
"""

from __future__ import annotations


def main(argv: list[str]) -> int:
    import cv2
    from inference_sdk import InferenceConfiguration, InferenceHTTPClient

    url, path = argv
    client = InferenceHTTPClient(api_url=url, api_key="KEY")
    client.configure(InferenceConfiguration(confidence_threshold=0.5, iou_threshold=0.4, class_filter=["circle"],
                                            max_detections=10, mask_decode_mode="fast", response_mask_format="rle",
                                            max_batch_size=2, api_key_transport="both"))
    client.get_server_info()
    client.load_model("shapes-yolov8seg")
    client.list_loaded_models()
    client.infer(path, model_id="shapes-yolov8seg")
    client.infer(cv2.imread(path), model_id="shapes-yolov8seg")
    client.infer([path, path, path], model_id="shapes-yolov8seg")
    client.unload_model("shapes-yolov8seg")
    client.unload_all_models()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
