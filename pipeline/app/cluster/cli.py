"""The command line of cluster mode: ``vidpipe run CONFIG --cluster ray[://ADDRESS]`` and
``vidpipe cluster status [--cluster ray[://ADDRESS]] [--json]``.

``run --cluster`` runs the YAML's streams on the cluster's workers and its sinks here; it
prints the placement as it changes (``-v``) and a summary at the end; exit codes as for
``vidpipe run`` (2 bad input, unreachable cluster or impossible resources; 1 a stream
that failed or a sink that failed results; 130/143 when stopped by a signal).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from pipeline.app.cluster.connect import connect
from pipeline.app.cluster.pipeline import ClusterPipeline
from pipeline.app.cluster.status import format_status, read_all
from pipeline.app.cluster_options import parse_cluster_url
from pipeline.app.config import PipelineConfig


def run_on_cluster(config: PipelineConfig, url: str, quiet: bool) -> tuple[int, dict[str, Any]]:
    """Run the pipeline on the cluster at ``url``; (exit code, summary)."""
    pipeline = ClusterPipeline(config, address=parse_cluster_url(url))
    stopped_by: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        pipeline.stop_requested()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = pipeline.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    failed = [sid for sid, s in summary["streams"].items() if s["state"] == "failed"]
    code = 128 + stopped_by[0] if stopped_by else 1 if failed or summary["errors"] else 0
    if not quiet:
        print(format_summary(summary), file=sys.stderr)
    return code, summary


def format_summary(s: dict[str, Any]) -> str:
    lines = [f"{s['pipeline']} (cluster): {s['results']} results, {s['fps']} results/s in {s['wall_s']} s"]
    for sid, st in s["streams"].items():
        lines.append(f"  stream {sid}: {st['state']}, {st['delivered']} results, last frame {st['last_frame']}, "
                     f"moved {st['moves']}x, duplicates dropped {st['duplicates_dropped']}")
    lines.extend(f"  event: {e}" for e in s["events"])
    lines.extend(f"  error: {e}" for e in s["errors"])
    return "\n".join(lines)


def cmd_cluster_status(args: argparse.Namespace) -> int:
    connect(parse_cluster_url(args.cluster))
    planes = read_all()
    if args.json:
        print(json.dumps(planes, indent=2))
    elif not planes:
        print("no vidpipe control plane is running on this cluster")
    else:
        print("\n".join(format_status(name, status) for name, status in sorted(planes.items())))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    cluster = sub.add_parser("cluster", help="cluster mode (Ray): where streams run")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True)
    status = cluster_sub.add_parser("status", help="print every control plane's placement: workers, streams, events")
    status.add_argument("--cluster", default="ray", metavar="ray[://HOST:PORT]",
                        help="the Ray cluster (default: RAY_ADDRESS or the one on this machine)")
    status.add_argument("--json", action="store_true", help="the status as JSON")
    status.set_defaults(func=cmd_cluster_status)
