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

from benchmarks.common import table  # noqa: E402
from pipeline.infer.model import Model  # noqa: E402
from pipeline.vision.result import Result  # noqa: E402
from pipeline.zoo import default_model_path  # noqa: E402
from sinks.config import ZmqSinkConfig  # noqa: E402
from sinks.subscriber import Subscriber  # noqa: E402
from sinks.zmq import ZmqSink  # noqa: E402
from sources.scene import SyntheticScene  # noqa: E402

NAME = "zmq"
TITLE = "ZeroMQ"


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
    sink = ZmqSink(ZmqSinkConfig(endpoint=ep, mode="pub", send_frames=frames, heartbeat_s=0.01, hwm=1000))
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
    from sources.config import SyntheticSourceConfig
    from sources.synthetic import SyntheticSource

    class Gated(SyntheticSource):
        def packets(self):
            go.wait(60)
            self.released_at = time.perf_counter()
            yield from super().packets()

    go = threading.Event()
    ep = endpoint()
    source = Gated("cam0", SyntheticSourceConfig(seed=4, frames=90, width=640, height=360))
    model = pipeline_fps.model
    sink = ZmqSink(ZmqSinkConfig(endpoint=ep, send_frames=True, hwm=4, heartbeat_s=0.05, sndbuf_bytes=65536))
    pipeline = Pipeline([source], model, [sink])
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


def measure(seconds: float = 3.0, runs: int = 5) -> dict:
    from statistics import median

    result = sample_result()
    rows = [run(result, False, seconds), run(result, True, seconds)]
    pipeline_fps.model = Model.load(default_model_path(), intra_op_threads=2)
    alone, slow, seen = [], [], ""
    for _ in range(runs):
        alone.append(pipeline_fps(False)[0])
        fps, seen = pipeline_fps(True)
        slow.append(fps)
    received, gaps, missed = (int(v) for v in seen.split()) if seen else (0, 0, 0)
    return {"throughput": rows, "alone": alone, "slow": slow, "ratio": median(slow) / median(alone),
            "slow_subscriber": {"received": received, "gaps": gaps, "missed": missed}}


def render(data: dict) -> str:
    from statistics import median

    rows = data["throughput"]
    body = [["header + JPEG (q 80)" if r["frames"] else "header only", f"{r['sent_per_s']:.0f}", f"{r['received_per_s']:.0f}",
             f"{r['mb_per_s']:.1f}", f"{r['bytes_per_msg'] / 1e3:.1f}"] for r in rows]
    runs = [["no subscriber", f"{median(data['alone']):.1f}", ", ".join(f"{v:.1f}" for v in data["alone"])],
            ["slow subscriber", f"{median(data['slow']):.1f}", ", ".join(f"{v:.1f}" for v in data["slow"])]]
    sub = data["slow_subscriber"]
    return "\n".join([
        f"PUB → SUB on 127.0.0.1, a real 1280×720 result with {rows[0]['detections']} detections and RLE masks; JSON "
        "encoding (and JPEG encoding) included on the sending side.", "",
        table(["payload", "sent msgs/s", "received msgs/s", "sent MB/s", "KB/msg"], body), "",
        "A deliberately slow subscriber (another process, 0.15 s per result, 64 KiB socket buffers, HWM 2 / 4) against "
        f"none, 90 frames 640×360 with JPEG, {len(data['alone'])} alternating runs:", "",
        table(["", "median fps", "runs"], runs), "",
        f"Ratio {data['ratio']:.2f} (target: within 10 %); the slow subscriber received {sub['received']}, counted "
        f"{sub['gaps']} gaps with {sub['missed']} messages missed.",
    ])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    data = measure(args.seconds, args.runs)
    print(render(data))
    return data


if __name__ == "__main__":
    main()
