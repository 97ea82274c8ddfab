"""A real ``vidpipe serve`` for the client's tests: a subprocess on 127.0.0.1 and a free
port, ready once ``/readyz`` answers 200, stopped with SIGTERM (its exit code checked)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, url: str, timeout: float) -> None:
    """Until /readyz answers 200: each try blocks on a connect, and between tries we wait
    on the process itself, so a server that dies is reported at once with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"vidpipe serve exited {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
    raise AssertionError(f"vidpipe serve not ready within {timeout} s")


@contextmanager
def serve(*args: str, timeout: float = 60.0) -> Iterator[str]:
    """The base URL of a running ``vidpipe serve ARGS`` (stopped on exit)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, timeout)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM is a clean stop
    assert proc.returncode in (0, -signal.SIGTERM), f"vidpipe serve exited {proc.returncode} on SIGTERM: {out[-2000:]}"
