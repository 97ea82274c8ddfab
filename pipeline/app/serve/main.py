"""``vidpipe serve``: the config from YAML and flags, the bind checked, uvicorn run until SIGINT/SIGTERM.

Binding anything but a loopback address without an API key is refused (one line, exit 2):
the server would answer anyone who can reach the port.

Example:
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from pipeline.app.serve.config import ServeConfig, load_serve_config
from pipeline.core.errors import ConfigError

log = logging.getLogger("vidpipe.serve")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_config(config_path: str | None, host: str | None = None, port: int | None = None, api_key: str | None = None,
                 models: str | None = None) -> ServeConfig:
    """The serve config with the command line's flags on top; ConfigError for a public bind without a key."""
    config = load_serve_config(config_path, host=host, port=port, api_key=api_key,
                               models_dir=str(Path(models)) if models else None)
    if not is_loopback(config.host) and not config.api_key:
        raise ConfigError(f"serve: binding {config.host} (not loopback) needs an API key: --api-key KEY "
                          "(or api_key in the config), or bind 127.0.0.1")
    if config.models_dir is not None and not config.models_dir.is_dir():
        raise ConfigError(f"serve: --models {config.models_dir}: not a folder")
    return config


def run(config: ServeConfig) -> int:
    """Serve until stopped (uvicorn handles SIGINT/SIGTERM: in-flight requests finish, models unload)."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("serve needs the [serve] extra: pip install 'vidpipe[serve]'") from None
    from pipeline.app.serve.app import create_app

    app = create_app(config)
    log.warning("vidpipe serve on http://%s:%d", config.host, config.port)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False, lifespan="on")
    return 0


def cmd_serve(args: object) -> int:
    """``vidpipe serve``'s entry (argparse namespace from :func:`add_parser`)."""
    return run(serve_config(getattr(args, "config", None), getattr(args, "host", None), getattr(args, "port", None),
                            getattr(args, "api_key", None), getattr(args, "models", None)))


def add_parser(sub: object) -> None:
    """The ``serve`` subcommand on the CLI's subparsers."""
    p = sub.add_parser("serve", help="HTTP inference server (Roboflow Inference v1 routes; extra [serve])")  # type: ignore[attr-defined]
    p.add_argument("config", nargs="?", help="serve YAML: limits, batching, model aliases, URL images")
    p.add_argument("--host", help="bind address (default 127.0.0.1; others need --api-key)")
    p.add_argument("--port", type=int, help="port (default 9001)")
    p.add_argument("--api-key", help="clients must send this key (api_key query/body field or Authorization: Bearer)")
    p.add_argument("--models", help="folder of ONNX files served by name: DIR/<id>.onnx")
    p.set_defaults(func=cmd_serve)
