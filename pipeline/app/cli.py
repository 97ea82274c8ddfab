"""``vidpipe`` command line: run, info, eval, subscribe, bench, config, keys, serve, streams, cluster.

Bad input (config, model, video, folder) prints one line, ``vidpipe: error: ...``, and
exits with code 2; a stage failure during a run, or a run that finished incomplete (the
summary's ``errors``: a truncated input, a sink that failed frames), exits with 1 after the
results already produced were flushed. A run stopped by SIGINT or SIGTERM exits with 128 +
the signal (130, 143), after its problems lines (what an abort lost).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipeline.app.cluster.cli import add_parser as add_cluster_parser
from pipeline.app.serve.command import add_parser as add_serve_parser
from pipeline.app.serve.pipelines.cli import add_parser as add_streams_parser
from pipeline.core.errors import StageError, VidpipeError
from pipeline.core.redact import install_filter, redact_text

log = logging.getLogger("vidpipe.cli")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_filter(logging.getLogger().handlers)  # no record reaches stderr with a credential in it
    logging.getLogger("numba").setLevel(max(level, logging.INFO))  # -vv: our debug lines, not the JIT's IR dumps


def _error(message: object) -> None:
    """The one line a failure prints (redacted: errors may quote a URL or a config value)."""
    print(f"vidpipe: error: {redact_text(str(message))}", file=sys.stderr)


def status_table(pipeline, rates: dict[str, float] | None = None):
    """A rich Table of the pipeline now: one row per stream, then the stages."""
    from rich.table import Table

    lat = pipeline.metrics.latency_summary()
    table = Table(title=f"vidpipe: {pipeline.name}", expand=False)
    for col in ("stream", "state", "frames", "results", "fps", "latency p50 ms", "p99 ms", "drops"):
        table.add_column(col, justify="left" if col in ("stream", "state") else "right")
    for sid, st in pipeline.streams.items():
        drops = st.drops_snapshot()
        p = lat.get(sid, {})
        table.add_row(sid, st.shown_state, str(st.frames), str(st.results), f"{(rates or {}).get(sid, 0.0):.1f}",
                      f"{p.get('p50', 0):.0f}", f"{p.get('p99', 0):.0f}",
                      ", ".join(f"{k}={v}" for k, v in drops.items()) or "0")
    return table


class Progress:
    """While a pipeline runs on a terminal: a live table (rich) refreshed every second,
    with a progress bar line for files. Its own thread, started and joined here."""

    def __init__(self, pipeline, total: int | None, enabled: bool) -> None:
        self.pipeline = pipeline
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vidpipe:progress", daemon=True)

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join(2)

    def _render(self, rates: dict[str, float], t0: float):
        from rich.console import Group
        from rich.text import Text

        done = sum(s.results for s in self.pipeline.streams.values())
        fps = done / max(1e-9, time.perf_counter() - t0)
        if self.total:
            frac = min(1.0, done / self.total)
            line = f"[{'#' * int(frac * 30):<30}] {done}/{self.total} frames  {fps:6.1f} fps"
        else:
            line = f"{done} results  {fps:6.1f} fps"
        return Group(status_table(self.pipeline, rates), Text(line))

    def _loop(self) -> None:
        from rich.console import Console
        from rich.live import Live

        t0 = time.perf_counter()
        last = {sid: 0 for sid in self.pipeline.streams}
        rates: dict[str, float] = {}
        with Live(self._render(rates, t0), console=Console(stderr=True), refresh_per_second=1, transient=False) as live:
            while not self._stop.wait(1.0):
                for sid, st in self.pipeline.streams.items():  # streams may have joined since
                    rates[sid] = st.results - last.get(sid, 0)
                    last[sid] = st.results
                live.update(self._render(rates, t0))


def _total_frames(pipeline) -> int | None:
    """Frames the run will produce, where every source knows (for the progress bar)."""
    counts = [stage.source.expected_frames() for stage in pipeline.sources]
    return None if any(n is None for n in counts) else sum(counts)


def _format_summary(s: dict) -> str:
    lines = [
        f"{s['pipeline']}: {s['results']} results from {s['frames']} frames, {s['detections']} detections, "
        f"{s['fps']} fps in {s['wall_s']} s (model {s['model']} on {', '.join(s['providers'])}, "
        f"post-processing on {s.get('postprocess_device', 'cpu')})",
    ]
    if s.get("provider_fallback"):
        lines.append(f"  provider fallback: requested {', '.join(s['requested_providers'])}")
    decoders = sorted({st["decoder"] for st in s["streams"].values() if st.get("decoder")})
    if decoders:
        lines.append(f"  decoding: {'; '.join(decoders)}")
    lines.append("  stage                          items      fps   busy   ms/item")
    for name, st in s["stages"].items():
        per = 1000 * st["busy_s"] / st["items"] if st["items"] else 0.0
        lines.append(f"  {name:<30} {st['items']:>6} {st['fps']:>8.1f} {st['busy_fraction']:>6.0%} {per:>9.2f}")
    drops = s["drops"] or {}
    lines.append("  drops: " + (", ".join(f"{k}={v}" for k, v in drops.items()) if drops else "none"))
    for sid, st in s["streams"].items():
        if st.get("error"):
            lines.append(f"  stream {sid}: {st['state']}: {st['error']}")
    return "\n".join(lines)


def _writable(name: str, option: str) -> Path:
    """``name`` as a path whose folder exists (made) and that can be written, or one line
    naming the option."""
    path = Path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VidpipeError(f"{option} {path}: cannot create its folder ({exc.strerror})") from None
    if path.is_dir() or not os.access(path if path.exists() else path.parent, os.W_OK):
        raise VidpipeError(f"{option} {path}: cannot write there")
    return path


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.app.config import load_config
    from pipeline.app.outputs import overwrite_all
    from pipeline.app.pipeline import Pipeline

    summary_path = _writable(args.summary, "--summary") if args.summary else None  # fail now, not after the run
    config = load_config(args.config, args.set)
    if args.cluster:
        from pipeline.app.cluster.cli import run_on_cluster

        code, summary = run_on_cluster(overwrite_all(config) if args.overwrite else config, args.cluster, args.quiet)
        if summary_path is not None:
            summary_path.write_text(json.dumps(summary, indent=2))
        return code
    pipeline = Pipeline.from_config(overwrite_all(config) if args.overwrite else config)
    code = 0
    with Progress(pipeline, _total_frames(pipeline), not args.quiet):
        try:
            summary = pipeline.run()
        except StageError as exc:
            summary = pipeline.summary()
            _error(exc)
            code = 1
        else:
            for problem in pipeline.problems:  # the run finished, but not everything made it
                _error(problem)
            code = 1 if pipeline.problems else 0
            if pipeline.stopped_by is not None:  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
                code = 128 + pipeline.stopped_by
    if summary_path is not None:
        summary_path.write_text(json.dumps(summary, indent=2))
    if not args.quiet:
        print(_format_summary(summary), file=sys.stderr)
    return code


def cmd_info(args: argparse.Namespace) -> int:
    from pipeline.infer.model import Model

    model = Model.load(args.model, warm_up=False, providers=args.providers or ["CPUExecutionProvider"],
                       names_file=args.names_file)
    print(model.describe())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.app.evaluate import evaluate

    print(json.dumps(evaluate(args.results, args.gt, args.kpt_sigma), indent=2))
    return 0


def _subscriber(args: argparse.Namespace):
    """A ZeroMQ subscriber of ``args.url``; for ``http(s)://HOST:PORT/pipelines/ID`` (a
    ``vidpipe serve --cluster`` pipeline) one that follows every worker's publisher."""
    from sinks.subscriber import Subscriber

    if args.url.startswith(("http://", "https://")) and "/pipelines/" in args.url:
        from pipeline.app.cluster.subscriber import ClusterSubscriber

        server, _, pid = args.url.rstrip("/").rpartition("/pipelines/")
        return ClusterSubscriber.of_server(server, pid, streams=args.stream or None)
    # A failed handshake with the publisher (wrong CURVE key, CURVE on one side only) ends
    # it: one line, exit 2. Bound, it serves several peers: one bad peer is only logged.
    return Subscriber(args.url, args.stream or None, mode="pull" if args.pull else "sub", bind=args.bind,
                      curve_client_secret=args.client_key, curve_server_public=args.server_key,
                      fail_on_handshake=not args.bind)


def cmd_subscribe(args: argparse.Namespace) -> int:
    save = _writable(args.save, "--save").open("w") if args.save else None
    n = 0
    t0 = time.perf_counter()
    try:
        with _subscriber(args) as sub:
            for msg in sub.iter(args.timeout):
                n += 1
                cats: dict[str, int] = {}
                dets = msg.detections
                for name in dets.category:
                    cats[name] = cats.get(name, 0) + 1
                what = " ".join(f"{k}={v}" for k, v in sorted(cats.items()))
                if dets.classification is not None and dets.classification.top is not None:  # frame-level answers
                    what = "top {} {:.2f}".format(*dets.classification.top)
                elif dets.semantic is not None:
                    what = " ".join(f"{k}={s:.0%}" for k, s in zip(dets.semantic.category, dets.semantic.share.tolist()))
                gap = f"  GAP {msg.gap_before}" if msg.gap_before else ""
                print(f"{msg.stream:<12} frame {msg.frame:>7}  {len(dets):>3} det "
                      f"{what:<40} latency {msg.record.latency_ms:7.1f} ms{gap}", flush=True)
                if save:
                    save.write(json.dumps(msg.header, separators=(",", ":")) + "\n")
                if args.count and n >= args.count:
                    break
            st = sub.stats
            print(f"received {st.received} in {time.perf_counter() - t0:.1f} s; gaps {st.gaps} ({st.missed} missed), "
                  f"heartbeats {st.heartbeats}, malformed {st.malformed}, foreign {st.foreign}", file=sys.stderr)
    except KeyboardInterrupt:
        return 130  # the shell's convention for SIGINT
    finally:
        if save:
            save.close()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from sinks.zmq import generate_keys

    for name, path in generate_keys(args.dir, force=args.force).items():
        print(f"{name:<14} {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """The suite is a tool of the source checkout (benchmarks/ beside the package, not
    installed): it runs there as its own process."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "suite.py").is_file():
        raise VidpipeError(f"vidpipe bench runs from a source checkout (no benchmarks/ beside {root / 'pipeline'}): "
                           "git clone the repository and run `make bench`")
    argv = [*args.names, *(["--list"] if args.list else []), *(["--out", str(Path(args.out).resolve())] if args.out else []),
            *(["--quick"] if args.quick else [])]
    return subprocess.call([sys.executable, "-m", "benchmarks.suite", *argv], cwd=root)


def cmd_config_schema(args: argparse.Namespace) -> int:
    from pipeline.app.config import PipelineConfig

    print(json.dumps(PipelineConfig.model_json_schema(), indent=2))
    return 0


def _add_run_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a pipeline from a YAML config")
    run.add_argument("config", help="pipeline YAML (see configs/)")
    run.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                     help="override a config field, e.g. --set model.postprocess.confidence=0.5")
    run.add_argument("--summary", help="write the run summary as JSON here")
    run.add_argument("--overwrite", action="store_true",
                     help="let every sink replace its existing output files (else an existing output is refused)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument("--cluster", metavar="ray[://HOST:PORT]",
                     help="run the streams on a Ray cluster's workers (extra [ray]; README: Running on a Ray cluster)")
    run.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidpipe", description="Streaming video analytics.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug logs")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_run_parser(sub)

    info = sub.add_parser("info", help="describe a model: layout, input size, classes, providers")
    info.add_argument("model", help="bundled model name or path to an ONNX file")
    info.add_argument("--providers", nargs="*", help="ONNX Runtime execution providers to request")
    info.add_argument("--names-file", help="class names side file")
    info.set_defaults(func=cmd_info)

    ev = sub.add_parser("eval", help="accuracy of results against ground truth")
    ev.add_argument("--results", required=True, help="vidpipe.result/1 JSONL")
    ev.add_argument("--gt", required=True, help="ground truth JSON (python -m sources.synthetic --gt)")
    ev.add_argument("--kpt-sigma", type=float, help="OKS sigma of every keypoint (default 0.05; COCO's for COCO's 17)")
    ev.set_defaults(func=cmd_eval)

    subp = sub.add_parser("subscribe", help="print results from a ZeroMQ publisher")
    subp.add_argument("url", help="e.g. tcp://127.0.0.1:5555; http://HOST:PORT/pipelines/ID: every worker publisher "
                                  "of a vidpipe serve --cluster pipeline")
    subp.add_argument("--stream", action="append", help="only this stream (repeatable)")
    subp.add_argument("--save", help="also write the received headers as JSONL")
    subp.add_argument("--count", type=int, help="stop after this many results")
    subp.add_argument("--timeout", type=float, help="stop after this many seconds without a result")
    subp.add_argument("--pull", action="store_true", help="PULL from a PUSH sink instead of SUB")
    subp.add_argument("--bind", action="store_true", help="bind instead of connect")
    subp.add_argument("--client-key", help="CURVE: this client's secret key file")
    subp.add_argument("--server-key", help="CURVE: the server's public key file")
    subp.set_defaults(func=cmd_subscribe)

    bench = sub.add_parser("bench", help="run the benchmark suite and rewrite benchmarks/RESULTS.md")
    bench.add_argument("names", nargs="*", help="benchmarks to run (default: the whole default suite)")
    bench.add_argument("--list", action="store_true", help="list the benchmarks")
    bench.add_argument("--out", help="write results, RESULTS.md and plots here instead of benchmarks/")
    bench.add_argument("--quick", action="store_true", help="tiny inputs: a smoke test of the suite itself")
    bench.set_defaults(func=cmd_bench)

    config = sub.add_parser("config", help="pipeline configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    schema = config_sub.add_parser("schema", help="print the JSON Schema of the pipeline YAML")
    schema.set_defaults(func=cmd_config_schema)

    keys = sub.add_parser("keys", help="CURVE key management")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    gen = keys_sub.add_parser("generate", help="write server and client certificates into DIR")
    gen.add_argument("dir")
    gen.add_argument("--force", action="store_true", help="replace keys already in DIR")
    gen.set_defaults(func=cmd_keys)
    add_serve_parser(sub)
    add_streams_parser(sub)
    add_cluster_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except VidpipeError as exc:
        _error(exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
