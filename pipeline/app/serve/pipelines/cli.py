"""``vidpipe streams add|remove|list --server URL [--pipeline ID]``: change the streams of a
pipeline that ``vidpipe serve`` runs. Light: the parser imports nothing of the server, and
the commands need only httpx (no model loads). A server's refusal is one line
(``vidpipe: error: ...``, exit 2).

A source is given as a URL or a path: ``rtsp://`` / ``rtsps://`` is an RTSP camera,
``http(s)://`` a URL stream, anything else a file (``--realtime``, ``--loop``); or as a
whole ``streams:`` entry in JSON with ``--json``.

Example:
    >>> source_config("rtsp://cam/1")
    {'type': 'rtsp', 'url': 'rtsp://cam/1'}
    >>> source_config("clip.mp4", realtime=True)
    {'type': 'file', 'path': 'clip.mp4', 'realtime': True}
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipeline.core.errors import ConfigError, VidpipeError

TIMEOUT_S = 60.0  # a drained removal waits for the stream's queued frames


def source_config(source: str, realtime: bool = False, loop: bool = False) -> dict[str, Any]:
    """The ``source:`` of a stream given by URL or path."""
    if source.startswith(("rtsp://", "rtsps://")):
        return {"type": "rtsp", "url": source}
    if source.startswith(("http://", "https://")):
        return {"type": "url", "url": source}
    cfg: dict[str, Any] = {"type": "file", "path": source}
    if realtime:
        cfg["realtime"] = True
    if loop:
        cfg["loop"] = True
    return cfg


class Client:
    """The server's /pipelines routes over httpx; failures as VidpipeError (one line)."""

    def __init__(self, server: str, api_key: str | None) -> None:
        import httpx

        self.httpx = httpx
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=TIMEOUT_S)
        self.server = server

    def call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            resp = self.http.request(method, path, json=body)
        except self.httpx.HTTPError as exc:
            raise VidpipeError(f"streams: {self.server}: {exc}") from None
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text.strip()
            raise VidpipeError(f"streams: {self.server} answered {resp.status_code}: {message}")
        return resp.json()

    def pipeline(self, chosen: str | None) -> str:
        """``chosen``, or the server's only pipeline."""
        if chosen:
            return chosen
        ids = [p["id"] for p in self.call("GET", "/pipelines")["pipelines"]]
        if len(ids) != 1:
            raise ConfigError(f"streams: {self.server} runs {len(ids)} pipelines ({', '.join(ids) or 'none'}): "
                              "name one with --pipeline ID")
        return str(ids[0])


def cmd_streams(args: argparse.Namespace) -> int:
    """``vidpipe streams``' entry."""
    client = Client(args.server, args.api_key)
    if args.action == "list":
        pids = [args.pipeline] if args.pipeline else [p["id"] for p in client.call("GET", "/pipelines")["pipelines"]]
        for pid in pids:
            for sid, st in client.call("GET", f"/pipelines/{pid}")["streams"].items():
                print(f"{pid}  {sid:<16} {st['state']:<12} {st.get('fps', 0.0):>7.2f} fps  {st['results']:>8} results")
        return 0
    pid = client.pipeline(args.pipeline)
    if args.action == "add":
        if args.json:
            try:
                entry = json.loads(args.source)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"streams add --json: not valid JSON: {exc}") from None
        else:
            if not args.id:
                raise ConfigError("streams add: give the stream an --id (or a whole streams: entry with --json)")
            entry = {"id": args.id, "source": source_config(args.source, args.realtime, args.loop)}
        answer = client.call("POST", f"/pipelines/{pid}/streams", entry)
        print(f"{pid}  {answer['id']} added")
    else:
        answer = client.call("DELETE", f"/pipelines/{pid}/streams/{args.stream}{'?drain=false' if args.abort else ''}")
        print(f"{pid}  {answer['id']} removed: {answer['summary'].get('results', 0)} results")
    return 0


def add_parser(sub: Any) -> None:
    """The ``streams`` subcommand on the CLI's subparsers."""
    p = sub.add_parser("streams", help="add, remove or list the streams of a pipeline run by vidpipe serve")
    actions = p.add_subparsers(dest="action", required=True)
    for name, help_ in (("list", "each stream: state, fps, results"), ("add", "add a stream"),
                        ("remove", "remove a stream (drained: its queued frames finish)")):
        a = actions.add_parser(name, help=help_)
        a.add_argument("--server", required=True, help="the server's URL, e.g. http://127.0.0.1:9001")
        a.add_argument("--pipeline", help="the pipeline's id (default: the server's only pipeline)")
        a.add_argument("--api-key", help="the server's API key")
        a.set_defaults(func=cmd_streams)
        if name == "add":
            a.add_argument("source", help="rtsp:// or http(s):// URL, a file path, or (--json) a streams: entry")
            a.add_argument("--id", help="the new stream's id")
            a.add_argument("--json", action="store_true", help="SOURCE is a whole streams: entry in JSON")
            a.add_argument("--realtime", action="store_true", help="a file: read at its own frame rate")
            a.add_argument("--loop", action="store_true", help="a file: start again at its end")
        elif name == "remove":
            a.add_argument("stream", help="the stream's id")
            a.add_argument("--abort", action="store_true", help="drop its queued frames instead of draining them")
