"""ZeroMQ throughput on loopback: messages/s and MB/s through PUB → SUB, with and without
the JPEG frame, using real results (the bundled model on a 1280×720 frame). Sent counts
what the publisher put out (JSON + RLE + JPEG encoding included); received what one
subscriber decoded (PUB drops what a subscriber cannot take).

Then the pipeline's fps with a deliberately slow subscriber (another process, 0.15 s per
result) against no subscriber, in alternating runs; medians and their ratio.

    python benchmarks/zmq_throughput.py [--seconds 3] [--runs 5]
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.model import Model  # noqa: E402
from pipeline.result import Result  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402
from sinks.subscriber import Subscriber  # noqa: E402
from sinks.zmq import ZmqSink  # noqa: E402
from sources.scene import SyntheticScene  # noqa: E402


def endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def sample_result() -> Result:
    image, _ = SyntheticScene(7).step()
    model = Model.load(default_model_path(), intra_op_threads=2)
    dets = model.infer([image])[0]
    return Result("cam0", 0, 0.0, time.time(), image.shape[1], image.shape[0], model.name, dets, image=image)


def run(result: Result, frames: bool, seconds: float) -> dict:
    ep = endpoint()
    sink = ZmqSink(ep, mode="pub", send_frames=frames, heartbeat_s=0.01, hwm=1000)
    sink.open()
    received = {"n": 0}
    with Subscriber(ep) as sub:
        while sub.stats.heartbeats == 0:  # the subscription is live once a heartbeat arrives
            sink.idle()
            sub.receive(timeout_s=0.02)
        done = threading.Event()

        def consume() -> None:
            while True:
                msg = sub.receive(timeout_s=0.3)
                if msg is not None:
                    received["n"] += 1
                elif done.is_set():
                    return

        t = threading.Thread(target=consume)
        t.start()
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds:
            result.frame_index = n
            sink.write(result)
            n += 1
        sent_s = time.perf_counter() - t0
        done.set()
        t.join(30)
    size = sink.bytes_sent / max(1, sink.sent)
    sink.close()
    return {"frames": frames, "sent_per_s": n / sent_s, "received_per_s": received["n"] / sent_s,
            "mb_per_s": n * size / sent_s / 1e6, "bytes_per_msg": size, "detections": len(result.detections)}


SLOW_SUBSCRIBER = r"""
import sys, time
from sinks.subscriber import Subscriber
with Subscriber(sys.argv[1], hwm=2, rcvbuf=65536) as sub:
    print("ready", flush=True)
    sub.receive(timeout_s=30)  # a heartbeat: subscribed
    print("live", flush=True)
    while (msg := sub.receive(timeout_s=1.5)) is not None:
        time.sleep(0.15)
    print(sub.stats.received, sub.stats.gaps, sub.stats.missed, flush=True)
"""


def pipeline_fps(slow: bool) -> tuple[float, str]:
    import subprocess

    from pipeline import Pipeline
    from sources.synthetic import SyntheticSource

    class Gated(SyntheticSource):
        def packets(self):
            go.wait(60)
            self.released_at = time.perf_counter()
            yield from super().packets()

    go = threading.Event()
    ep = endpoint()
    source = Gated("cam0", seed=4, frames=90, width=640, height=360)
    model = pipeline_fps.model
    pipeline = Pipeline([source], model, [ZmqSink(ep, send_frames=True, hwm=4, heartbeat_s=0.05, sndbuf=65536)])
    proc = None
    box = {}
    t = threading.Thread(target=lambda: box.update(pipeline.run(handle_signals=False)))
    t.start()
    if slow:
        proc = subprocess.Popen([sys.executable, "-c", SLOW_SUBSCRIBER, ep], stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[1])
        proc.stdout.readline()
        proc.stdout.readline()
    go.set()
    t.join(120)
    fps = box["results"] / (time.perf_counter() - source.released_at)
    seen = proc.communicate(timeout=60)[0].strip() if proc else ""
    return fps, seen


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    result = sample_result()
    rows = [run(result, False, args.seconds), run(result, True, args.seconds)]
    print(f"PUB→SUB on 127.0.0.1, 1280x720 result with {rows[0]['detections']} detections (RLE masks)")
    print(f"{'payload':<16} {'sent msgs/s':>12} {'recv msgs/s':>12} {'sent MB/s':>10} {'KB/msg':>8}")
    for r in rows:
        print(f"{'header + JPEG' if r['frames'] else 'header only':<16} {r['sent_per_s']:>12.0f} {r['received_per_s']:>12.0f} "
              f"{r['mb_per_s']:>10.1f} {r['bytes_per_msg'] / 1e3:>8.1f}")
    from statistics import median

    from pipeline.model import Model

    pipeline_fps.model = Model.load(default_model_path(), intra_op_threads=2)
    alone, slow, seen = [], [], ""
    for _ in range(args.runs):
        alone.append(pipeline_fps(False)[0])
        fps, seen = pipeline_fps(True)
        slow.append(fps)
    print(f"\npipeline fps, 90 frames 640x360 with JPEG frames, {args.runs} alternating runs each:")
    print(f"  no subscriber: median {median(alone):.1f} (runs {', '.join(f'{v:.1f}' for v in alone)})")
    print(f"  slow subscriber (0.15 s/result): median {median(slow):.1f} (runs {', '.join(f'{v:.1f}' for v in slow)})")
    print(f"  ratio {median(slow) / median(alone):.3f}; last slow subscriber received/gaps/missed: {seen}")
    rows.append({"alone": alone, "slow": slow})
    return rows


if __name__ == "__main__":
    main()
