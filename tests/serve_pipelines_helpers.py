"""What the tests of the server's pipelines share: a results poller (long polls: the server
answers as soon as a record exists) and a Server-Sent Events reader in its own thread that
waits on a condition."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

END = "vidpipe.end/1"


class Poller:
    """Reads ``GET /pipelines/{id}/results?after=SEQ&wait=S`` and keeps every record."""

    def __init__(self, http: httpx.Client, pid: str) -> None:
        self.http, self.pid = http, pid
        self.records: list[dict[str, Any]] = []
        self.next = 0
        self.dropped = 0

    def until(self, what: Callable[[list[dict[str, Any]]], bool], why: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout  # a bound on the whole wait, not a timing assert
        while not what(self.records):
            assert time.monotonic() < deadline, f"timed out waiting for {why}: {self.records[-3:]}"
            r = self.http.get(f"/pipelines/{self.pid}/results", params={"after": self.next, "wait": 5})
            assert r.status_code == 200, r.text
            body = r.json()
            assert all(rec["seq"] > self.next for rec in body["records"])
            self.records += body["records"]
            self.next, self.dropped = body["next"], self.dropped + body["dropped"]

    def of(self, sid: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["stream"] == sid]


def results_of(records: list[dict[str, Any]], sid: str) -> int:
    return sum(1 for r in records if r["stream"] == sid and r["schema"] != END)


def ended(records: list[dict[str, Any]], sid: str) -> bool:
    return any(r["stream"] == sid and r["schema"] == END for r in records)


class EventReader:
    """``GET /pipelines/{id}/events`` read in a thread: (event, data) pairs, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[str, Any]] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> EventReader:
        self.thread.start()
        return self

    def _read(self) -> None:
        event = "message"
        with httpx.stream("GET", self.url, timeout=httpx.Timeout(60.0, read=None)) as resp:
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    with self.cond:
                        self.events.append((event, json.loads(line[6:])))
                        self.cond.notify_all()
        with self.cond:
            self.events.append(("eof", None))
            self.cond.notify_all()

    def wait(self, what: Callable[[list[tuple[str, Any]]], bool], why: str, timeout: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: what(self.events), timeout), f"timed out waiting for {why}: {self.events[-3:]}"

    def records(self) -> list[dict[str, Any]]:
        with self.cond:
            return [data for event, data in self.events if event in ("result", "end")]


def scraped(http: httpx.Client) -> dict[str, float]:
    """The server's ``/metrics`` as {'name{labels}': value}."""
    text = http.get("/metrics").text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def open_sockets(pid: int) -> int:
    """Sockets the process ``pid`` holds open (its descriptors that are sockets)."""
    fds = f"/proc/{pid}/fd"
    count = 0
    for fd in os.listdir(fds):
        try:
            count += os.readlink(f"{fds}/{fd}").startswith("socket:")
        except FileNotFoundError:  # closed meanwhile
            pass
    return count


def settles(value: Callable[[], float], target: float, why: str, timeout: float = 15.0) -> None:
    """Waits until ``value()`` is at most ``target`` (a bound on the wait, not a timing assert:
    a closed connection's socket goes once the server has read its end)."""
    deadline = time.monotonic() + timeout
    while (now := value()) > target:
        assert time.monotonic() < deadline, f"{why}: {now}, expected at most {target}"
        time.sleep(0.05)
