"""No message crashes the subscriber (issue 14, case 12): random multipart messages and
valid JSON with wrong types, sent over a real ZeroMQ PUSH socket, never raise out of
``Subscriber.receive()`` nor out of reading a received message's detections; each bad one
is counted as malformed or foreign. Every example is followed by a good message, the sync
point: the subscriber must still deliver it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.wire import SCHEMA
from sinks.subscriber import Subscriber
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]
CLI_SENTINEL_STREAM = "sentinel-9"  # longer than any random text drawn below

GOOD = {"schema": SCHEMA, "stream": "c", "frame": 1, "width": 64, "height": 48, "detections": [
    {"bounding-box": {"left": 2.0, "top": 3.0, "width": 10.0, "height": 8.0}, "category": "circle", "class_id": 0,
     "score": 0.9, "track_id": -1, "rle": {"size": [48, 64], "counts": "S38X100000000000000000m]2"}}]}
SENTINEL = [b"c", json.dumps({**GOOD, "frame": 987654, "detections": []}).encode()]
CLI_SENTINEL = [CLI_SENTINEL_STREAM.encode(),
                json.dumps({**GOOD, "stream": CLI_SENTINEL_STREAM, "frame": 987654, "detections": []}).encode()]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["schema", "stream", "frame", "width", "height", "detections", "pts", "captured_at", "timings", "latency_ms",
          "drops", "stream_seq", "format", "predictions", "objects", "gap", "inferred",
          "keypoint_names", "classification", "semantic", "top", "stuffs", "category", "score"]  # the task fields (issue 15)
DETECTION_FIELDS = ["bounding-box", "category", "class_id", "score", "track_id", "rle", "bitmask", "polygon", "keypoints"]


@st.composite
def wrong_types(draw) -> list[bytes]:
    """A valid record with one envelope field and one detection field replaced by anything."""
    record = json.loads(json.dumps(GOOD))
    if draw(st.booleans()):
        record[draw(st.sampled_from(FIELDS))] = draw(json_values)
    detections = record.get("detections")
    if isinstance(detections, list) and detections and isinstance(detections[0], dict):
        target = draw(st.sampled_from([*DETECTION_FIELDS, "rle.counts", None]))
        if target == "rle.counts":
            detections[0]["rle"] = {"size": [48, 64], "counts": draw(st.text(max_size=12))}
        elif target is not None:
            detections[0][target] = draw(json_values)
    text = json.dumps(record, allow_nan=True)
    parts = [draw(st.sampled_from([b"c", b"", b"\xff", b"vidpipe.heartbeat"])), text.encode()]
    if draw(st.booleans()):
        parts.append(draw(st.binary(max_size=16)))
    return parts


raw_messages = st.lists(st.binary(max_size=64), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def channel():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind(endpoint)
    with Subscriber(endpoint, mode="pull") as sub:
        yield push, sub
    push.close(0)
    ctx.term()


def _deliver(push, sub: Subscriber, parts: list[bytes]) -> None:
    before = sub.stats.malformed + sub.stats.foreign + sub.stats.received + sub.stats.heartbeats
    push.send_multipart(parts)
    push.send_multipart(SENTINEL)
    while True:
        msg = sub.receive(timeout_s=10)
        assert msg is not None, "the subscriber still delivers after a bad message"
        dets = msg.detections
        _ = (dets.category, dets.masks, dets.keypoints, dets.classification, dets.semantic, msg.frame)  # what readers read
        if msg.frame == 987654:
            break
    after = sub.stats.malformed + sub.stats.foreign + sub.stats.received + sub.stats.heartbeats
    assert after >= before + 2, "the bad message was counted (or delivered), and the sentinel received"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=raw_messages)
def test_random_multipart_messages_never_raise(channel, parts):
    _deliver(*channel, parts)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=wrong_types())
def test_valid_json_with_wrong_types_never_raises(channel, parts):
    _deliver(*channel, parts)


@pytest.mark.parametrize("parts", [
    [b"c", b'{"schema": "vidpipe.result/1", "stream": "c", "frame": Infinity, "width": 64, "height": 48, "detections": []}'],
    [b"c", b"[" * 100_000 + b"]" * 100_000],
    [b"c", json.dumps(GOOD).encode(), b""],
    [b"c", json.dumps({**GOOD, "detections": [{**GOOD["detections"][0], "rle": {"size": [48, 64], "counts": "!!!!"}}]}).encode()],
    [b"c", json.dumps({**GOOD, "detections": [{**GOOD["detections"][0], "rle": {"size": [48, 64], "counts": "P"}}]}).encode()],
])
def test_the_messages_that_crashed_it_are_counted_malformed(channel, parts):
    push, sub = channel
    before = sub.stats.malformed
    _deliver(push, sub, parts)
    assert sub.stats.malformed == before + 1


def _cli_subscribe(messages: list[list[bytes]]) -> subprocess.CompletedProcess:
    """``vidpipe subscribe --pull --bind`` fed ``messages`` then a sentinel on a stream of its
    own, the only stream it prints (a random message may be a valid record of stream c)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "subscribe", f"tcp://127.0.0.1:{port}", "--pull", "--bind",
                             "--stream", CLI_SENTINEL_STREAM, "--count", "1", "--timeout", "30"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 5000)
    push.connect(f"tcp://127.0.0.1:{port}")  # queued until the CLI has bound: no race
    try:
        for parts in [*messages, CLI_SENTINEL]:
            push.send_multipart(parts)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        push.close()
        ctx.term()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@settings(max_examples=4, deadline=None)
@given(messages=st.lists(wrong_types() | raw_messages, min_size=10, max_size=30))
def test_vidpipe_subscribe_never_crashes(messages):
    proc = _cli_subscribe(messages)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "frame  987654" in proc.stdout, (proc.stdout, proc.stderr)


def test_vidpipe_subscribe_counts_the_messages_that_crashed_it():
    crashers = [[b"c", json.dumps({**GOOD, "detections": "nope"}).encode()],
                [b"c", json.dumps({**GOOD, "detections": [{"foo": 1}]}).encode()],
                [b"c", json.dumps({**GOOD, "latency_ms": "slow"}).encode()],
                [b"c", json.dumps({**GOOD, "detections": [{**GOOD["detections"][0], "rle": {"size": [48, 64],
                                                                                            "counts": "!!!!"}}]}).encode()]]
    proc = _cli_subscribe(crashers)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "frame  987654" in proc.stdout and "malformed 4" in proc.stderr, (proc.stdout, proc.stderr)
