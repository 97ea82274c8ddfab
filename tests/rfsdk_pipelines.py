"""Roboflow's own ``inference-sdk`` drives inference pipelines on a live ``vidpipe serve``: run
by tests/test_inference_pipelines.py under the SDK's virtualenv (``make rfsdk-venv``), unchanged.

    .venv-rfsdk/bin/python tests/rfsdk_pipelines.py URL VIDEO SPECS.json FRAMES

Per spec in SPECS.json (``{name: {"specification": ..., "parameters": ...}}``), in turn: start
a pipeline on VIDEO, list, status, consume until FRAMES frames came back, pause, status,
resume, status, terminate, status again (refused). Prints one JSON object: every answer.
"""

from __future__ import annotations

from typing import Any

MAX_CONSUMES = 400  # each waits up to a second on the server: a pipeline that never answers ends the run


def drive(client: Any, video: str, run: dict[str, Any], frames: int) -> dict[str, Any]:
    from inference_sdk.http.errors import HTTPCallErrorError

    started = client.start_inference_pipeline_with_workflow(
        video_reference=video, workflow_specification=run["specification"],
        workflows_parameters=run.get("parameters"), results_buffer_size=64)
    pid = started["context"]["pipeline_id"]
    out: dict[str, Any] = {"started": started, "listed": client.list_inference_pipelines(),
                           "status": client.get_inference_pipeline_status(pid), "consumed": []}
    for _ in range(MAX_CONSUMES):
        got = client.consume_inference_pipeline_result(pid, excluded_fields=run.get("excluded"))
        if got["outputs"]:
            out["consumed"].append(got)
        if len(out["consumed"]) >= frames:
            break
    out["paused"] = client.pause_inference_pipeline(pid)
    out["status_paused"] = client.get_inference_pipeline_status(pid)
    out["resumed"] = client.resume_inference_pipeline(pid)
    out["status_resumed"] = client.get_inference_pipeline_status(pid)
    out["terminated"] = client.terminate_inference_pipeline(pid)
    try:
        client.get_inference_pipeline_status(pid)
        out["after"] = "answered"
    except HTTPCallErrorError as exc:
        out["after"] = {"error": exc.status_code, "message": exc.api_message}
    return out


def main(argv: list[str]) -> int:
    import json

    from inference_sdk import InferenceHTTPClient
    from inference_sdk.http.errors import HTTPCallErrorError

    url, video, specs, frames = argv[0], argv[1], json.loads(open(argv[2]).read()), int(argv[3])
    client = InferenceHTTPClient(api_url=url)
    out: dict[str, Any] = {}
    for name, run in specs.items():
        try:
            out[name] = drive(client, video, run, frames)
        except HTTPCallErrorError as exc:
            out[name] = {"error": exc.status_code, "message": exc.api_message}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
