"""The benchmark suite behind ``vidpipe bench``: runs benchmarks, keeps each one's figures
as JSON (``results/NAME.json``, with the machine, versions and date they were measured
on), and rewrites ``RESULTS.md`` and the plots from every stored result, so a partial run
(``vidpipe bench decode``) updates its own section and keeps the others.

    vidpipe bench                 # the default suite (about 22 minutes on 2 cores)
    vidpipe bench decode scaling  # just these
    vidpipe bench soak            # the 10-minute soak (not in the default suite)
    vidpipe bench live-overload   # a live camera at 2x overload for 10 minutes (not in the default suite)
    vidpipe bench gpu             # GPU paths, on a machine with an NVIDIA GPU
    vidpipe bench peers           # beside Ultralytics and Roboflow InferencePipeline (their venvs: make bench-peers)
    vidpipe bench --list

``--quick`` runs every selected benchmark on tiny inputs (a smoke test of the suite
itself; the figures are not meant to be kept, so use it with ``--out``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, describe_machine, describe_versions, machine

log = logging.getLogger("vidpipe.bench")

HEADER = """# Benchmark results

Written by `vidpipe bench` from the figures in `results/*.json` (one file per benchmark,
with the machine and versions it was measured on); rerun a benchmark to update its
section. Hand-recorded measurements (`results/notes.md`) are appended at the end.
"""


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    title: str
    argv: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    default: bool = True  # part of a plain `vidpipe bench`
    plot: str | None = None  # for soak-like benchmarks: the plot's file name


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("decode", "benchmarks.decode", "Decoding vs ffmpeg", ("--frames", "300", "--repeat", "5"),
              ("--frames", "30", "--repeat", "1")),
    Benchmark("postprocess", "benchmarks.postprocess", "Post-processing hot path", ("--repeat", "30"),
              ("--repeat", "2", "--objects", "5")),
    Benchmark("families", "benchmarks.families", "Model families: end-to-end heads and pose", ("--repeat", "30"),
              ("--repeat", "2")),
    Benchmark("tracker", "benchmarks.tracker", "Tracker", (), ("--frames", "30")),
    Benchmark("pipeline", "benchmarks.pipeline", "Pipeline efficiency", ("--frames", "300"),
              ("--frames", "20", "--threads", "1", "--repeat", "1")),
    Benchmark("batching", "benchmarks.batching", "Cross-stream batching", ("--frames", "100"), ("--frames", "10", "--streams", "2")),
    Benchmark("scaling", "benchmarks.scaling", "Scaling with streams", ("--frames", "100"),
              ("--frames", "10", "--streams", "1", "2")),
    Benchmark("streams", "benchmarks.streams", "Streams added and removed at runtime", ("--seconds", "10"),
              ("--seconds", "1", "--fps", "5")),
    Benchmark("streams-http", "benchmarks.streams_http", "Streams added and removed over HTTP (vidpipe serve)",
              ("--seconds", "10"), ("--seconds", "1", "--fps", "5")),
    Benchmark("model", "benchmarks.model_speed", "Model inference (ONNX Runtime CPU)", ("--repeat", "30"), ("--repeat", "2")),
    Benchmark("serve", "benchmarks.serve", "HTTP serving (vidpipe serve)", ("--requests", "96"),
              ("--requests", "4", "--clients", "1", "2", "--max-batch", "2")),
    Benchmark("live-latency", "benchmarks.live_latency", "Glass-to-result latency of a live camera",
              ("--seconds", "20", "--fps", "30", "--spinning-pairs", "2"),
              ("--seconds", "2", "--fps", "15")),
    Benchmark("live-overload", "benchmarks.live_overload", "Live camera at 2× overload", ("--seconds", "600"),
              ("--seconds", "3"), default=False),
    Benchmark("video", "benchmarks.video_sink", "Annotated video sink", ("--frames", "300", "--repeat", "5"),
              ("--frames", "10", "--repeat", "1")),
    Benchmark("zmq", "benchmarks.zmq_throughput", "ZeroMQ", ("--seconds", "3", "--runs", "3"), ("--seconds", "0.3", "--runs", "1")),
    Benchmark("cluster", "benchmarks.cluster", "Cluster mode (Ray)", ("--frames", "100"), ("--frames", "10", "--streams", "2")),
    Benchmark("latency", "benchmarks.soak", "Latency over time at 2× overload", ("--minutes", "1"), ("--minutes", "0.1"),
              plot="latency.png"),
    Benchmark("soak", "benchmarks.soak", "Soak (10 minutes)", ("--minutes", "10"), ("--minutes", "0.1"), default=False,
              plot="soak.png"),
    Benchmark("heldout", "benchmarks.heldout", "Held-out accuracy and tracking", (), ("--frames", "20"), default=False),
    Benchmark("gpu", "benchmarks.gpu", "GPU paths", ("--repeat", "50"), ("--repeat", "3"), default=False),
    # Needs the peers' own virtualenvs (`make ultralytics-venv rfinference-venv`); a missing one is a skipped row.
    Benchmark("peers", "benchmarks.peers", "vidpipe beside Ultralytics and Roboflow InferencePipeline",
              ("--frames", "300", "--repeat", "3"), ("--frames", "30"), default=False),
)
BY_NAME = {b.name: b for b in BENCHMARKS}


def _measure(bench: Benchmark, quick: bool, directory: Path) -> dict:
    argv = list(bench.quick if quick else bench.argv)
    if bench.plot:  # soak-like: it plots its own samples
        argv += ["--plot", str(directory / bench.plot)]
    return importlib.import_module(bench.module).main(argv)


def _render_section(bench: Benchmark, stored: dict) -> str:
    module = importlib.import_module(bench.module)
    body = module.render(stored["data"], bench.plot) if bench.plot else module.render(stored["data"])
    m = stored["machine"]
    cmd = f"vidpipe bench {bench.name}" + (" --quick" if stored.get("quick") else "")
    meta = f"_Measured {m['date']} in {stored['seconds']:.0f} s on {describe_machine(m)}._"
    return f"## {bench.title} — `{cmd}`\n\n{meta}\n\n{body}\n"


def _plots(bench: Benchmark, data: dict, directory: Path) -> list[Path]:
    if bench.plot:  # soak-like: main() drew it already
        return [directory / bench.plot]
    module = importlib.import_module(bench.module)
    return module.plot(data, directory) if hasattr(module, "plot") else []


def write_results(directory: Path) -> Path:
    """RESULTS.md from every stored result in ``directory/results``, in suite order."""
    stored = {}
    for bench in BENCHMARKS:
        path = directory / "results" / f"{bench.name}.json"
        if path.exists():
            stored[bench.name] = json.loads(path.read_text())
    latest = max(stored.values(), key=lambda s: s["machine"]["date"], default=None)
    parts = [HEADER]
    if latest is not None:
        m = latest["machine"]
        parts.append(f"Latest run: {m['date']} on {describe_machine(m)}.\n\nVersions: {describe_versions(m)}.\n")
    parts.append("Contents: " + ", ".join(f"[{BY_NAME[n].title}](#{n})" for n in stored) + ".\n")
    for name, s in stored.items():
        parts.append(f'<a id="{name}"></a>\n\n' + _render_section(BY_NAME[name], s))
    notes = directory / "results" / "notes.md"
    if notes.exists():
        parts.append(notes.read_text())
    out = directory / "RESULTS.md"
    out.write_text("\n".join(parts))
    return out


def run(names: list[str] | None = None, directory: Path | None = None, quick: bool = False) -> Path:
    """Run the named benchmarks (default: the default suite), store, rewrite RESULTS.md."""
    directory = directory or ROOT / "benchmarks"
    unknown = [n for n in names or [] if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown benchmark(s): {', '.join(unknown)}")
    selected = [BY_NAME[n] for n in names] if names else [b for b in BENCHMARKS if b.default]
    (directory / "results").mkdir(parents=True, exist_ok=True)
    where = machine()
    for bench in selected:
        log.info("benchmark %s: running", bench.name)
        print(f"\n== {bench.title} (vidpipe bench {bench.name}) ==", flush=True)
        t = time.perf_counter()
        data = _measure(bench, quick, directory)
        seconds = time.perf_counter() - t
        if "skipped" in data:  # e.g. no GPU here: keep whatever another machine measured
            print(f"(not stored: {data['skipped']})")
            continue
        stored = {"name": bench.name, "seconds": seconds, "quick": quick, "machine": where, "data": data}
        (directory / "results" / f"{bench.name}.json").write_text(json.dumps(stored, indent=1))
        for path in _plots(bench, data, directory):
            print(f"plot: {path}")
        print(f"({seconds:.0f} s)", flush=True)
    out = write_results(directory)
    print(f"\nwrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidpipe bench", description="Run benchmarks and rewrite RESULTS.md.")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: the whole default suite)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks")
    parser.add_argument("--out", help="write results, RESULTS.md and plots here instead of benchmarks/")
    parser.add_argument("--quick", action="store_true", help="tiny inputs: a smoke test of the suite itself")
    args = parser.parse_args(argv)
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:<12} {b.title}{'' if b.default else '  (not in the default suite)'}")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(args.names, Path(args.out) if args.out else None, quick=args.quick)
    except ValueError as exc:  # unknown names, before anything runs
        print(f"vidpipe: error: {exc} (vidpipe bench --list)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
