"""The README's commands work as written (run from the repository root, like a user).

Every line of the README's ``bash`` blocks runs, except installs and ``make`` (CI runs
``make test`` itself, and ``make demo`` is checked by the demo's own run) and the ZeroMQ
pair, which runs as a pair: the publisher in the background, the subscriber against it.
The "From Python" block runs too, on the demo clip.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # vidpipe, python of this venv
    env["PYTHONPATH"] = str(REPO)
    return env


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def _commands() -> list[str]:
    lines = []
    for block in _blocks("bash"):
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.split("  #")[0].strip()
            if line and not line.startswith(("#", "make ", "pip ")):
                lines.append(line)
    return lines


def _run(cmd: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = cmd.replace(".venv/bin/python", sys.executable).replace("python ", f"{sys.executable} ", 1)
    if cmd.startswith("vidpipe "):
        cmd = f"{sys.executable} -m pipeline {cmd[len('vidpipe '):]}"
    return subprocess.run(cmd, shell=True, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)


def test_readme_opens_with_the_two_commands():
    first = _blocks("bash")[0].splitlines()
    assert first[0].startswith("make demo") and first[1].startswith("make test")


def test_readme_shell_commands_work():
    cmds = _commands()
    assert any(c.startswith("vidpipe run") for c in cmds) and any(c.startswith("vidpipe eval") for c in cmds)
    zmq_run = next(c for c in cmds if "configs/zmq.yaml" in c)
    subscribe = next(c for c in cmds if c.startswith("vidpipe subscribe"))
    slow = ("benchmarks/soak.py", "benchmarks/postprocess.py", "benchmarks/pipeline.py")  # measured in benchmarks/
    for cmd in cmds:
        if cmd in (zmq_run, subscribe) or any(s in cmd for s in slow):
            continue
        proc = _run(cmd)
        assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"
    # The ZeroMQ pair: the publisher in the background, the README's subscriber against it.
    publisher = subprocess.Popen(f"{sys.executable} -m pipeline run configs/zmq.yaml -q", shell=True, cwd=REPO,
                                 env=_env(), stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        proc = _run(subscribe + " --timeout 60", timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 100 and "received 100" in proc.stderr
    finally:
        os.killpg(publisher.pid, signal.SIGTERM)
        publisher.wait(30)
    assert (REPO / "out" / "cam0.jsonl").exists()


def test_readme_python_example_runs():
    code = next(b for b in _blocks("python") if "Pipeline.from_config(\"configs/demo.yaml\")" in b)
    clip = REPO / "out" / "demo-input.mp4"
    if not clip.exists():  # exactly as `make demo` makes it, so a later `make demo` can reuse it
        assert _run(f"python -m sources.synthetic --out {clip} --gt out/demo-input.gt.json --frames 300 --seed 3").returncode == 0
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("demo ") == 300


@pytest.mark.parametrize("path", sorted(REPO.glob("configs/*.yaml")), ids=lambda p: p.name)
def test_configs_mentioned_in_the_readme_exist(path):
    assert path.name in README or path.name == "heldout.yaml"
