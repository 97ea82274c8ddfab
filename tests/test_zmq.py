"""ZeroMQ sink and subscriber over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import zmq

from pipeline import Pipeline
from pipeline.app.cli import main as cli_main
from sinks.config import CurveServerConfig, ZmqSinkConfig
from sinks.subscriber import MessageError, Subscriber
from sinks.zmq import ZmqSink, generate_keys
from sources.config import FileSourceConfig, SyntheticSourceConfig
from sources.synthetic import SyntheticSource


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


class GatedSource(SyntheticSource):
    """A synthetic camera that starts sending frames once ``go`` is set (or it is stopped)."""

    def __init__(self, *args, go: threading.Event, **kw) -> None:
        super().__init__(*args, **kw)
        self.go = go

    def packets(self):
        while not self.go.wait(0.05):
            if self.stopping:
                return
        self.released_at = time.perf_counter()
        yield from super().packets()


def _run_in_thread(pipeline: Pipeline) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        try:
            box["summary"] = pipeline.run(handle_signals=False)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            box["error"] = exc

    t = threading.Thread(target=target, name="test-pipeline")
    t.start()
    return t, box


def test_push_delivers_exactly_one_message_per_frame(small_clip, model):
    endpoint = free_endpoint()
    from sources.file import VideoFileSource

    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, mode="push", send_frames=True))
    pipeline = Pipeline([VideoFileSource("cam0", FileSourceConfig(path=small_clip))], model, [sink])
    with Subscriber(endpoint, mode="pull") as sub:
        t, box = _run_in_thread(pipeline)
        got = list(sub.iter(timeout_s=10))
        t.join(30)
    assert "error" not in box, box.get("error")
    assert [m.frame for m in got] == list(range(40))
    assert sub.stats.gaps == 0 and sub.stats.malformed == 0
    assert got[0].image is not None and got[0].image.shape == (360, 640, 3)
    assert [m.header["stream_seq"] for m in got] == list(range(1, 41))


def test_rle_over_the_wire_decodes_to_the_in_process_masks(small_clip, model):
    endpoint = free_endpoint()
    from sources.file import VideoFileSource

    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, mode="push"))
    pipeline = Pipeline([VideoFileSource("cam0", FileSourceConfig(path=small_clip))], model, [sink])
    local = {}
    with Subscriber(endpoint, mode="pull") as sub:
        with pipeline:
            for r in pipeline:
                local[r.frame_index] = r.detections
                # PUSH is lossless: every result is waiting for us on the socket.
        remote = {m.frame: m.detections for m in sub.iter(timeout_s=5)}
    assert sorted(remote) == sorted(local) == list(range(40))
    n = 0
    for f, dets in local.items():
        wire = remote[f]
        assert len(wire) == len(dets)
        np.testing.assert_allclose(wire.xyxy, dets.xyxy, atol=0.01)
        for a, b in zip(wire.masks, dets.masks):
            assert np.array_equal(a, b)
            n += 1
    assert n > 20
    sv = remote[10].to_supervision()
    assert sv.mask is not None and sv.mask.shape[1:] == (360, 640)


def _pub_run(model, endpoint: str, slow_subscriber: bool) -> tuple[float, dict]:
    go = threading.Event()
    source = GatedSource("cam0", SyntheticSourceConfig(seed=4, frames=60, width=640, height=360), go=go)
    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, mode="pub", hwm=4, heartbeat_s=0.05, send_frames=True, jpeg_quality=95,
                                sndbuf_bytes=65536))
    pipeline = Pipeline([source], model, [sink])
    stats: dict = {}
    stop = threading.Event()

    def slow() -> None:
        with Subscriber(endpoint, hwm=2, rcvbuf=65536) as sub:
            first = sub.receive(timeout_s=10)  # a heartbeat went by: the subscription is live
            go.set()
            while True:
                msg = sub.receive(timeout_s=0.5)
                if msg is None and stop.is_set():
                    break  # drained what reached us after the run ended
                if msg is not None:
                    time.sleep(0.15)  # a deliberately slow consumer (not synchronisation)
            stats.update(vars(sub.stats), first=first)

    helper = threading.Thread(target=slow) if slow_subscriber else None
    t, box = _run_in_thread(pipeline)
    if helper:
        helper.start()
    else:
        go.set()
    t.join(60)
    wall = time.perf_counter() - source.released_at  # from the first frame to the end
    stop.set()
    if helper:
        helper.join(10)
    assert "error" not in box, box.get("error")
    s = box["summary"]
    return s["results"] / wall, stats


def test_pub_slow_subscriber_never_slows_the_pipeline(model):
    """The pipeline runs at its own pace, not the subscriber's, and the subscriber counts
    what it missed. (The fps ratio with and without a slow subscriber is a benchmark:
    benchmarks/zmq_throughput.py.)"""
    endpoint = free_endpoint()
    fps, stats = _pub_run(model, endpoint, True)
    # Paced by the subscriber, the run could not beat its rate and PUB would drop nothing;
    # the margin is the subscriber's own sleep, not a machine-speed figure.
    subscriber_rate = 1 / 0.15  # it sleeps 0.15 s per result
    assert fps > subscriber_rate, (fps, stats)
    assert stats["received"] > 0 and stats["gaps"] > 0 and stats["missed"] > 0, stats
    assert stats["received"] + stats["missed"] <= 60


def test_curve_only_authenticated_subscribers_receive(tmp_path, model):
    keys = generate_keys(tmp_path / "keys")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(keys["client_public"], allowed)
    endpoint = free_endpoint()
    go = threading.Event()
    source = GatedSource("cam0", SyntheticSourceConfig(seed=5, frames=20, width=320, height=180), go=go)
    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, heartbeat_s=0.05,
                                curve=CurveServerConfig(server_secret_key=keys["server_secret"], allowed_clients=allowed)))
    pipeline = Pipeline([source], model, [sink])
    with Subscriber(endpoint, curve_client_secret=keys["client_secret"], curve_server_public=keys["server_public"]) as good, \
            Subscriber(endpoint) as intruder:
        t, box = _run_in_thread(pipeline)
        good.receive(timeout_s=10)  # heartbeat: the authenticated subscription is live
        go.set()
        received = list(good.iter(timeout_s=3))
        t.join(30)
        assert intruder.receive(timeout_s=0.5) is None
    assert "error" not in box, box.get("error")
    assert [m.frame for m in received] == list(range(20))
    assert intruder.stats.received == 0 and intruder.stats.heartbeats == 0


def test_random_and_malformed_messages_are_counted_not_fatal():
    endpoint = free_endpoint()
    rng = np.random.default_rng(0)
    good = json.dumps({"schema": "vidpipe.result/1", "stream": "s", "frame": 1, "width": 4, "height": 4, "detections": []}).encode()
    junk = [
        [b"only-one-part"],
        [b"s", b"not json"],
        [b"s", b"[1, 2]"],
        [b"s", json.dumps({"schema": "someone.else/2"}).encode()],
        [b"other", good],  # topic does not match the header's stream
        [b"s", good, b"not a jpeg"],
        [b"s", b"{}", b"x", b"y"],
    ] + [[bytes(rng.integers(0, 256, rng.integers(0, 40), dtype=np.uint8)) for _ in range(int(rng.integers(1, 5)))]
         for _ in range(50)]
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    try:
        with Subscriber(endpoint, mode="pull", bind=True) as sub:
            push.connect(endpoint)
            for parts in junk:
                push.send_multipart(parts)
            push.send_multipart([b"s", good])
            msg = sub.receive(timeout_s=5)
            while msg is None or msg.frame != 1:
                msg = sub.receive(timeout_s=5)
                assert msg is not None or sub.stats.malformed + sub.stats.foreign < len(junk)
            assert sub.stats.malformed + sub.stats.foreign >= 7
            assert sub.stats.foreign >= 1
        with Subscriber(endpoint, mode="pull", bind=True, strict=True) as strict:
            push.send_multipart([b"s", b"not json"])
            with pytest.raises(MessageError):
                strict.receive(timeout_s=5)
    finally:
        push.close(0)
        ctx.term()


def test_keys_generate_cli(tmp_path, capsys):
    assert cli_main(["keys", "generate", str(tmp_path / "k")]) == 0
    assert (tmp_path / "k" / "server.key_secret").exists() and (tmp_path / "k" / "client.key").exists()


def test_subscribe_cli_prints_and_saves(small_clip, model, tmp_path, capsys):
    from sources.file import VideoFileSource

    endpoint = free_endpoint()
    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, mode="push"))
    pipeline = Pipeline([VideoFileSource("cam0", FileSourceConfig(path=small_clip))], model, [sink])
    t, box = _run_in_thread(pipeline)
    save = tmp_path / "saved.jsonl"
    assert cli_main(["subscribe", endpoint, "--pull", "--count", "40", "--save", str(save), "--timeout", "20"]) == 0
    t.join(30)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 40 and lines[0].startswith("cam0") and "frame       0" in lines[0]
    assert "received 40" in err and "gaps 0" in err
    saved = [json.loads(x) for x in save.read_text().splitlines()]
    assert [r["frame"] for r in saved] == list(range(40))


def test_messages_become_results(small_clip, model):
    from sources.file import VideoFileSource

    endpoint = free_endpoint()
    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, mode="push", send_frames=True))
    pipeline = Pipeline([VideoFileSource("cam0", FileSourceConfig(path=small_clip))], model, [sink])
    with Subscriber(endpoint, mode="pull") as sub:
        t, _ = _run_in_thread(pipeline)
        results = [m.to_result() for m in sub.iter(timeout_s=10)]
        t.join(30)
    assert len(results) == 40
    r = results[-1]
    assert (r.stream_id, r.frame_index, r.width, r.height) == ("cam0", 39, 640, 360)
    assert r.image.shape == (360, 640, 3) and r.latency_ms > 0 and "inference" in r.timings
