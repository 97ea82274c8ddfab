"""SIGINT/SIGTERM on a real ``vidpipe run`` (issue 14, cases 8 and 13): the first signal
drains within a bound, even past a PUSH sink nobody consumes; a second one aborts at once
and counts what it lost; exit codes 130/143; streams end ``stopped``."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# An endless synthetic camera (not paced: the rings stay full). Small rings after the
# decoder, so a sink that stalls would stall everything within a few results; a long
# packet ring, so a drain takes seconds and the second signal comes well before its end.
CONFIG = """streams: [{{id: cam, source: {{type: synthetic, frames: null, width: 320, height: 180, seed: 3}}}}]
model: {{intra_op_threads: 1}}
rings: {{packets: 64, frames: 2, results: 4, sink: 4}}
sinks:
  - {{type: jsonl, path: r.jsonl}}
{extra}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """``python -m pipeline run`` in a subprocess; its stderr read by a thread, line by line."""

    def __init__(self, workdir: Path, extra_sinks: str = "") -> None:
        (workdir / "p.yaml").write_text(CONFIG.format(extra=extra_sinks))
        self.dir = workdir
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "p.yaml", "--summary", "s.json", "-q"],
                                     cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)},
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(text in ln for ln in self.lines) or self.proc.poll() is not None, timeout)
        assert ok and any(text in ln for ln in self.lines), f"no {text!r} on stderr: {''.join(self.lines)}"

    def jsonl_lines(self) -> list[str]:
        path = self.dir / "r.jsonl"
        return path.read_text().splitlines() if path.exists() else []

    def wait_for_results(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.jsonl_lines()) < n:
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, f"fewer than {n} results in {timeout} s"
            time.sleep(0.05)  # polling a file another process writes: there is no event to wait on

    def finish(self, timeout: float = 60) -> tuple[int, dict, str]:
        """Exit code, the summary and stderr; the process is killed if it does not end in time."""
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill()
            self.proc.wait()
            self._reader.join(10)
        return code, json.loads((self.dir / "s.json").read_text()), "".join(self.lines)


def test_double_sigint_aborts_counts_what_it_lost_and_exits_130(tmp_path):
    run = Run(tmp_path)
    run.wait_for_results(3)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for_line("SIGINT: stopping")
    run.proc.send_signal(signal.SIGINT)
    code, s, err = run.finish()
    assert code == 130, err
    assert "SIGINT again: aborting" in err and "Traceback" not in err, err
    cam = s["streams"]["cam"]
    assert cam["state"] == "stopped", cam
    # The rings were full when it aborted: what was read or decoded and never became a result is counted.
    assert s["drops"].get("aborted", 0) > 0, s["drops"]
    assert s["results"] + s["drops"]["aborted"] + s["drops"].get("frame_ring_full", 0) >= s["frames"], s
    lost = re.search(r"aborted: (\d+) frames lost \(cam: (\d+)\)", err)
    assert lost and int(lost.group(1)) == s["drops"]["aborted"], err
    assert any(e.startswith("aborted: ") for e in s["errors"]), s["errors"]
    # Every result is in the JSONL file or counted as not written by that sink.
    unwritten = re.search(r"sink jsonl:\S+: (\d+) results not written \(aborted\)", err)
    lines = run.jsonl_lines()
    assert len(lines) + (int(unwritten.group(1)) if unwritten else 0) == s["results"], (len(lines), err)
    for line in lines:
        json.loads(line)  # every line whole


@pytest.mark.parametrize("sig,exit_code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_push_sink_without_consumer_stalls_nothing_and_one_signal_drains(tmp_path, sig, exit_code):
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    run = Run(tmp_path, f"  - {{type: zmq, endpoint: '{endpoint}', mode: push, send_timeout_s: 0.5}}\n")
    run.wait_for_results(40)  # ten times what the rings hold: the PUSH sink stalls nothing
    run.proc.send_signal(sig)
    code, s, err = run.finish()
    assert code == exit_code, err
    assert err.count("no consumer took a result within 0.5 s") == 1, err  # logged once
    zmq_stage = s["stages"][f"sink:zmq:{endpoint}"]
    assert zmq_stage["dropped"] == s["results"] > 40, zmq_stage
    assert f"sink zmq:{endpoint}: {s['results']} results dropped: no consumer took them within 0.5 s" in err
    # A graceful drain loses nothing: every frame decoded became a result, every result a line.
    assert "aborted" not in s["drops"], s["drops"]
    assert s["frames"] == s["results"] + sum(s["drops"].values()), s
    assert len(run.jsonl_lines()) == s["results"]
    assert s["streams"]["cam"]["state"] == "stopped"


def test_a_drain_that_cannot_finish_aborts_after_drain_timeout(model, caplog):
    """A sink stuck in a write that never returns: stop() still ends run(), by an abort
    after ``drain_timeout_s``, and what the stuck sink never wrote is counted."""
    from pipeline import Pipeline
    from sinks.callback import CallbackSink
    from sources.config import SyntheticSourceConfig
    from sources.synthetic import SyntheticSource

    writing, release = threading.Event(), threading.Event()

    def stuck(_result) -> None:
        writing.set()
        release.wait(120)

    source = SyntheticSource("cam", SyntheticSourceConfig(frames=None, width=160, height=96))
    pipeline = Pipeline([source], model, [CallbackSink(stuck)])
    pipeline.drain_timeout_s = 0.5
    box: dict = {}
    runner = threading.Thread(target=lambda: box.update(summary=pipeline.run(handle_signals=False)))
    runner.start()
    try:
        assert writing.wait(120), "the sink got a result"
        pipeline.stop()
        runner.join(120)
        assert not runner.is_alive(), "run() returned although the sink never did"
    finally:
        release.set()
        runner.join(30)
    s = box["summary"]
    assert any("graceful stop took over" in r.getMessage() for r in caplog.records)
    assert s["streams"]["cam"]["state"] == "stopped"
    assert any(re.fullmatch(r"sink callback:stuck: [1-9]\d* results not written \(aborted\)", e) for e in s["errors"]), s
