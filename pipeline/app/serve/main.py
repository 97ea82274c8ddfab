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
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.app.cluster_options import parse_cluster_url
from pipeline.app.serve.config import ServeConfig, load_serve_config
from pipeline.app.serve.pipelines.state import StateFile
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
                 models: str | None = None, state: str | None = None, cluster: str | None = None) -> ServeConfig:
    """The serve config with the command line's flags on top; ConfigError for a public bind without a key."""
    config = load_serve_config(config_path, host=host, port=port, api_key=api_key,
                               models_dir=str(Path(models)) if models else None, state=state, cluster=cluster)
    if config.cluster:
        parse_cluster_url(config.cluster)  # a bad URL is refused now; the cluster is joined by the first pipeline
    if not is_loopback(config.host) and not config.api_key:
        raise ConfigError(f"serve: binding {config.host} (not loopback) needs an API key: --api-key KEY "
                          "(or api_key in the config), or bind 127.0.0.1")
    if config.models_dir is not None and not config.models_dir.is_dir():
        raise ConfigError(f"serve: --models {config.models_dir}: not a folder")
    if config.state is not None:  # a bad state file is refused before the server starts
        if not config.state.parent.is_dir():
            raise ConfigError(f"serve: --state {config.state}: no folder {config.state.parent}")
        StateFile(config.state).read()
    return config


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that port 0 gets a free port we can announce."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise ConfigError(f"serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _server_class() -> type:
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn's server, telling the app that it stops before waiting for open responses."""

        on_exit: Any = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.on_exit is not None:  # from a thread: the signal may have interrupted a holder of its locks
                threading.Thread(target=self.on_exit, name="serve-exit", daemon=True).start()
            super().handle_exit(sig, frame)

    return _Server


def run(config: ServeConfig, announce: Callable[[str], None] = log.info) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn: in-flight requests finish, then the models unload;
    exit 130/143). Announces ``vidpipe serve: ready on http://HOST:PORT`` once the preloaded
    models are loaded, and ``vidpipe serve: stopped ...`` once every model's thread has been
    joined (the CLI prints them: the lines a supervisor waits for)."""
    try:
        import uvicorn

        from pipeline.app.serve.app import create_app
    except ImportError as exc:
        raise ConfigError(f"serve needs the [serve] extra (no module {exc.name}): pip install 'vidpipe[serve]'") from None

    sock = bind(config.host, config.port)
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host

    def ready() -> None:
        announce(f"vidpipe serve: ready on http://{host}:{port}")

    def stopped() -> None:
        announce("vidpipe serve: stopped (every model unloaded)")

    def exit_on(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # the CLI's convention: 143 after SIGTERM (130 after SIGINT)

    app = create_app(config, on_ready=ready, on_stop=stopped)
    _Server = _server_class()
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    server.on_exit = app.server.pipelines.end_event_streams  # open event streams end, or uvicorn would wait on them
    # uvicorn handles SIGTERM itself (a graceful shutdown), then raises it again for the handler found before it
    previous = signal.signal(signal.SIGTERM, exit_on)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
