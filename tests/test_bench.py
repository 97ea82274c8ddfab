"""`vidpipe bench`: the suite runs its benchmarks, stores their figures, and rewrites
RESULTS.md and the plots; a partial run keeps the other sections. Runs with --quick
(tiny inputs) into a temporary directory: the figures themselves are benchmarks, not tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline", "bench", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_bench_writes_results_tables_and_plots(tmp_path):
    proc = _bench("decode", "tracker", "scaling", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = (tmp_path / "RESULTS.md").read_text()
    for title in ("Decoding vs ffmpeg", "Tracker", "Scaling with streams"):
        assert f"## {title}" in results
    assert "Versions: Python" in results and "cores" in results  # machine, versions, date
    decode = json.loads((tmp_path / "results" / "decode.json").read_text())
    assert decode["machine"]["date"] and decode["data"]["fps"]["vidpipe"] > 0
    if shutil.which("ffmpeg") or os.environ.get("CI"):  # `make system-deps` installs ffmpeg; CI must have it
        assert decode["data"]["fps"].get("ffmpeg_bgr", 0) > 0
        assert "`ffmpeg -pix_fmt bgr24 -f null`" in results
    scaling = json.loads((tmp_path / "results" / "scaling.json").read_text())
    assert [r["streams"] for r in scaling["data"]["rows"]] == [1, 2]
    assert all(r["results"] == 10 * r["streams"] for r in scaling["data"]["rows"])
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Rerunning one benchmark rewrites its section and keeps the others.
    before = decode["machine"]["date"], (tmp_path / "results" / "decode.json").stat().st_mtime_ns
    proc = _bench("tracker", "--quick", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = (tmp_path / "RESULTS.md").read_text()
    assert "## Decoding vs ffmpeg" in results and "## Scaling with streams" in results
    assert (tmp_path / "results" / "decode.json").stat().st_mtime_ns == before[1]


def test_bench_unknown_name_is_a_clear_error(tmp_path):
    proc = _bench("nosuch", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "unknown benchmark(s): nosuch" in proc.stderr and not (tmp_path / "RESULTS.md").exists()


def test_bench_list_names_every_benchmark():
    proc = _bench("--list")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == ["decode", "postprocess", "families", "tracker", "pipeline", "batching", "scaling", "streams",
                     "streams-http", "model", "serve", "live-latency", "live-overload", "video", "zmq", "cluster", "latency", "soak",
                     "heldout", "gpu", "peers"]
