"""The ``serve`` subcommand's arguments, kept light: ``vidpipe --help`` and the other
subcommands do not import the server (pydantic models, starlette) to build the parser.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_serve(args: argparse.Namespace) -> int:
    """``vidpipe serve``'s entry (argparse namespace from :func:`add_parser`)."""
    from pipeline.app.serve.main import run, serve_config

    config = serve_config(args.config, args.host, args.port, args.api_key, args.models, args.state, args.cluster)
    return run(config, announce=_to_stderr)


def _to_stderr(line: str) -> None:
    """The server's ready and stopped lines, which supervisors and tests wait for."""
    print(line, file=sys.stderr, flush=True)


def add_parser(sub: Any) -> None:
    """The ``serve`` subcommand on the CLI's subparsers (``argparse._SubParsersAction``)."""
    p = sub.add_parser("serve", help="HTTP inference server (Roboflow Inference v1 routes; extra [serve])")
    p.add_argument("config", nargs="?", help="serve YAML: limits, batching, model aliases, URL images")
    p.add_argument("--host", help="bind address (default 127.0.0.1; others need --api-key)")
    p.add_argument("--port", type=int, help="port (default 9001)")
    p.add_argument("--api-key", help="clients must send this key (api_key query/body field or Authorization: Bearer)")
    p.add_argument("--models", help="folder of ONNX files served by name: DIR/<id>.onnx")
    p.add_argument("--state", help="JSON file: the pipelines it runs are written here on each change, restored at start")
    p.add_argument("--cluster", metavar="ray[://HOST:PORT]",
                   help="run the pipelines' streams on a Ray cluster's workers (extra [ray]; README: Running on a Ray cluster)")
    p.set_defaults(func=cmd_serve)
