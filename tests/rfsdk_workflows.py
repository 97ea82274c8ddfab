"""Roboflow's own ``inference-sdk`` runs Workflow specs against a live ``vidpipe serve``: run by
tests/test_workflows.py under the SDK's virtualenv (``make rfsdk-venv``), unchanged.

    .venv-rfsdk/bin/python tests/rfsdk_workflows.py URL IMAGE.png SPECS.json

SPECS.json: ``{name: {"specification": ..., "parameters": ...}}``. Prints one JSON object:
``run_workflow``'s answer per name, or ``{"error": status}`` where the server refused it.
"""

from __future__ import annotations


def main(argv: list[str]) -> int:
    import json

    from inference_sdk import InferenceHTTPClient
    from inference_sdk.http.errors import HTTPCallErrorError

    url, path, specs = argv[0], argv[1], json.loads(open(argv[2]).read())
    client = InferenceHTTPClient(api_url=url)
    out: dict[str, object] = {}
    for name, run in specs.items():
        try:
            out[name] = client.run_workflow(specification=run["specification"], images={"image": path},
                                            parameters=run.get("parameters"))
        except HTTPCallErrorError as exc:
            out[name] = {"error": exc.status_code, "message": exc.api_message}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
