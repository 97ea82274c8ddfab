"""Every frame a stream loses is counted exactly once, under its own reason, whatever the
frame ring's policy: a real Decoder stage decodes real JPEG packets (one corrupt) into a
two-slot frame ring, with ``max_fps`` halving the rate."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from pipeline.core.items import EndOfStream, Frame, StreamInfo
from pipeline.core.options import StreamOptions
from pipeline.core.ring import POLICIES, RingBuffer, RingClosed
from pipeline.core.stage import Bus
from pipeline.core.stats import StreamStats
from sources.base import Source
from sources.decoder import Decoder

PACKETS = 40  # at 30 fps; max_fps 15 keeps every other one


class JpegSource(Source):
    def packets(self):
        yield StreamInfo(self.stream_id, "image", 64, 48, 30.0)
        ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
        assert ok
        for i in range(PACKETS):
            data = b"not an image" if i == 7 else jpeg.tobytes()
            yield self.make_packet(data, i / 30)


def _drain(ring: RingBuffer, got: list[Frame], done: threading.Event) -> None:
    while True:
        try:
            item = ring.get(timeout=10)
        except RingClosed:
            break
        if isinstance(item, EndOfStream):
            break
        if isinstance(item, Frame):
            got.append(item)
    done.set()


@pytest.mark.parametrize("policy", POLICIES)
def test_each_dropped_frame_is_counted_once_per_reason(policy):
    stats = StreamStats("s")
    packets: RingBuffer = RingBuffer(PACKETS + 4, "block", "packets:s")
    frames: RingBuffer = RingBuffer(2, policy, "frames:s", on_drop=lambda _item: stats.drop("frame_ring_full"))
    for item in JpegSource("s").packets():
        packets.put(item)
    packets.put(EndOfStream("s"))
    decoder = Decoder("s", Bus(), packets, frames, stats, StreamOptions(max_fps=15))
    got: list[Frame] = []
    done = threading.Event()
    drainer = threading.Thread(target=_drain, args=(frames, got, done))
    if policy == "block":
        drainer.start()  # lossless: someone must take the frames
    decoder.start()
    assert decoder.join(30), "the decoder finished"
    if policy != "block":
        drainer.start()  # the decoder has ended: the ring holds what it kept
    assert done.wait(30)
    drainer.join(5)
    drops = stats.drops_snapshot()
    assert drops.get("decode_error") == 1, drops
    assert drops.get("max_fps") == (PACKETS - 1) // 2, drops  # 39 decodable at 30 fps, one of each two kept
    kept = PACKETS - 1 - drops["max_fps"]
    assert stats.frames == kept
    assert drops.get("frame_ring_full", 0) == frames.stats.dropped, "the ring's drops, counted once"
    assert len(got) + drops.get("frame_ring_full", 0) == kept, "every kept frame was delivered or counted as dropped"
    if policy == "block":
        assert "frame_ring_full" not in drops and len(got) == kept
    else:
        assert frames.stats.dropped >= kept - 2, "a two-slot ring with no reader kept at most two frames"


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_pipeline_counts_each_frame_once_results_or_drops(policy):
    """Through the whole pipeline: a synthetic camera much faster than the model, so the
    frame ring drops; every decoded frame is a result or a drop counted once."""
    from pipeline import Pipeline

    cfg = {"streams": [{"id": "s", "source": {"type": "synthetic", "frames": 60, "width": 320, "height": 180},
                        "ring_policy": policy}],
           "model": {"intra_op_threads": 1}, "rings": {"frames": 2}}
    summary = Pipeline.from_config(cfg).run(handle_signals=False)
    dropped = summary["drops"].get("frame_ring_full", 0)
    assert dropped > 0, "the model is slower than the source: the ring drops"
    assert dropped == summary["rings"]["frames:s"]["dropped"], "counted once, by the ring"
    assert summary["results"] + dropped == summary["frames"] == 60
