"""CURVE going wrong (issue 14, cases 14 and 15): a failed handshake is reported within
seconds, not waited on forever; bad key files are one line naming the file, exit 2.
Real sockets: a CURVE ZmqSink and subscribers with the wrong keys."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sinks.config import CurveServerConfig, ZmqSinkConfig
from sinks.subscriber import HandshakeError, Subscriber
from sinks.zmq import ZmqSink, generate_keys

REPO = Path(__file__).resolve().parents[1]


def _endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    """The sink's keys, an allowed client, and a stranger's keys (another `keys generate`)."""
    good = generate_keys(tmp_path / "keys")
    other = generate_keys(tmp_path / "other")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(good["client_public"], allowed)
    (tmp_path / "garbage.key").write_text("this is not a certificate\n")
    (tmp_path / "badkey.key_secret").write_text('public-key = "short"\nsecret-key = "also short"\n')
    return {**good, "allowed": allowed, "wrong_server_public": other["server_public"],
            "stranger_secret": other["client_secret"], "garbage": tmp_path / "garbage.key",
            "bad_z85": tmp_path / "badkey.key_secret"}


@pytest.fixture
def curve_sink(keys):
    sink = ZmqSink(ZmqSinkConfig(endpoint=_endpoint(), heartbeat_s=0.05,
                                 curve=CurveServerConfig(server_secret_key=keys["server_secret"],
                                                         allowed_clients=keys["allowed"])))
    sink.open()
    yield sink
    sink.close()


def _receive_until_failure(sub: Subscriber) -> None:
    """receive() until it raises; a handshake that never fails ends the test in 20 s."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sub.receive(timeout_s=0.5)
    pytest.fail("no handshake failure reported in 20 s")


def test_wrong_server_key_raises_instead_of_waiting(curve_sink, keys):
    with Subscriber(curve_sink.endpoint, curve_client_secret=keys["client_secret"],
                    curve_server_public=keys["wrong_server_public"]) as sub:
        with pytest.raises(HandshakeError, match="hung up on 3 handshakes in a row: is the CURVE server public key"):
            _receive_until_failure(sub)
        assert sub.stats.handshake_failures == 1 and sub.stats.received == 0


def test_a_client_key_the_sink_does_not_allow_is_refused(curve_sink, keys):
    with Subscriber(curve_sink.endpoint, curve_client_secret=keys["stranger_secret"],
                    curve_server_public=keys["server_public"]) as sub:
        with pytest.raises(HandshakeError, match="refused this client's CURVE key .status 400"):
            _receive_until_failure(sub)


def test_a_plain_subscriber_counts_and_logs_the_mismatch(curve_sink, caplog):
    with Subscriber(curve_sink.endpoint) as sub:
        deadline = time.monotonic() + 20
        while sub.stats.handshake_failures == 0 and time.monotonic() < deadline:
            assert sub.receive(timeout_s=0.2) is None
        assert sub.stats.handshake_failures >= 1 and sub.stats.received == 0
        # ZeroMQ reports a mechanism mismatch, or just the publisher hanging up: either names CURVE.
        error = sub.handshake.error or ""
        assert "disagree on CURVE" in error or "does it require CURVE? (this client has no CURVE keys)" in error, error
    assert sum("CURVE" in r.getMessage() for r in caplog.records) == 1, "logged once"


def test_the_right_keys_still_receive(curve_sink, keys):
    with Subscriber(curve_sink.endpoint, curve_client_secret=keys["client_secret"],
                    curve_server_public=keys["server_public"]) as sub:
        deadline = time.monotonic() + 20
        while sub.stats.heartbeats == 0 and time.monotonic() < deadline:
            curve_sink.idle()  # a heartbeat every 50 ms, as the sink's stage would send
            sub.receive(timeout_s=0.1)
        assert sub.stats.heartbeats >= 1 and sub.stats.handshake_failures == 0


def _vidpipe(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=timeout)


def _one_line(proc: subprocess.CompletedProcess, expected: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidpipe: error: ") and expected in lines[0], proc.stderr


def test_subscribe_cli_with_a_wrong_server_key_says_so_and_exits_2(curve_sink, keys, tmp_path):
    proc = _vidpipe(["subscribe", curve_sink.endpoint, "--client-key", str(keys["client_secret"]),
                     "--server-key", str(keys["wrong_server_public"])], tmp_path, timeout=60)  # no --timeout
    _one_line(proc, "hung up on 3 handshakes in a row: is the CURVE server public key the publisher's?")


SUBSCRIBER_KEYS = [
    ("missing", "client_secret", "CURVE client secret key {tmp}/nope.key_secret: not found"),
    ("public-only", "client_secret", "CURVE client secret key {client_public}: holds no secret key"),
    ("garbage", "server_public", "CURVE server public key {garbage}: not a ZeroMQ certificate"),
    ("bad_z85", "server_public", "CURVE server public key {bad_z85}: its public-key is not a CURVE key"),
]


@pytest.mark.parametrize("bad,which,expected", SUBSCRIBER_KEYS, ids=[c[0] for c in SUBSCRIBER_KEYS])
def test_subscriber_key_file_errors_are_one_line(keys, tmp_path, bad, which, expected):
    files = {"missing": tmp_path / "nope.key_secret", "public-only": keys["client_public"],
             "garbage": keys["garbage"], "bad_z85": keys["bad_z85"]}
    given = {"client_secret": keys["client_secret"], "server_public": keys["server_public"], which: files[bad]}
    proc = _vidpipe(["subscribe", "tcp://127.0.0.1:1", "--client-key", str(given["client_secret"]),
                     "--server-key", str(given["server_public"]), "--timeout", "0.1"], tmp_path)
    _one_line(proc, expected.format(tmp=tmp_path, client_public=keys["client_public"], garbage=keys["garbage"],
                                    bad_z85=keys["bad_z85"]))


SINK_KEYS = [
    ("garbage", "CURVE server secret key {secret}: not a ZeroMQ certificate"),
    ("public-only", "CURVE server secret key {secret}: holds no secret key"),
    ("bad-client", "CURVE allowed client key {allowed}/garbage.key: not a ZeroMQ certificate"),
]


@pytest.mark.parametrize("bad,expected", SINK_KEYS, ids=[c[0] for c in SINK_KEYS])
def test_sink_key_file_errors_are_one_line(keys, tmp_path, bad, expected):
    secret = {"garbage": keys["garbage"], "public-only": keys["server_public"]}.get(bad, keys["server_secret"])
    if bad == "bad-client":
        shutil.copy(keys["garbage"], keys["allowed"] / "garbage.key")
    (tmp_path / "p.yaml").write_text(f"""
streams: [{{id: s, source: {{type: synthetic, frames: 1, width: 64, height: 48}}}}]
model: {{intra_op_threads: 1}}
sinks: [{{type: zmq, endpoint: "{_endpoint()}", curve: {{server_secret_key: "{secret}", allowed_clients: "{keys['allowed']}"}}}}]
""")
    _one_line(_vidpipe(["run", "p.yaml", "-q"], tmp_path), expected.format(secret=secret, allowed=keys["allowed"]))
