"""A real ``vidpipe serve`` for the tests: its own process on a free port of 127.0.0.1,
ready when it prints its ready line (read from its stderr: no polling, no sleeps), stopped
with SIGTERM (its exit code is the test's to check).

Usage::

    with ServeProcess(tmp_path, {"preload": ["shapes-yolov8seg"]}) as server:
        httpx.get(server.url + "/info")
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
READY = re.compile(r"vidpipe serve: ready on (http://\S+)")


class ServeProcess:
    """``python -m pipeline serve CONFIG --port 0`` with ``config`` written as CONFIG."""

    def __init__(self, tmp: Path, config: dict[str, Any] | None = None, args: tuple[str, ...] = (),
                 start_timeout: float = 120.0) -> None:
        self.path = Path(tmp) / "serve.yaml"
        self.path.write_text(yaml.safe_dump(config or {}))
        self.args, self.start_timeout = args, start_timeout
        self.url = ""
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.proc: subprocess.Popen[str] | None = None

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = READY.search(line)
            if found:
                self.url = found.group(1)
                self._ready.set()
        self._ready.set()  # the process ended: wake the waiter (it sees no URL)

    def start(self) -> ServeProcess:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", str(self.path), "--port", "0", *self.args],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(self.start_timeout) or not self.url:
            self.stop()
            raise AssertionError("vidpipe serve did not become ready:\n" + "".join(self.lines))
        return self

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code (uvicorn finishes in-flight requests and the models unload)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(10)
        return rc

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def log(self) -> str:
        return "".join(self.lines)
