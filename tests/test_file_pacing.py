"""Files as stand-ins for cameras: realtime pacing, loop, start_seconds; max_fps; http URLs."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time

import pytest

from pipeline import Pipeline


def _results(cfg: dict) -> list:
    with Pipeline.from_config(cfg) as p:
        return list(p)


def _cfg(source: dict, **stream) -> dict:
    return {"streams": [{"id": "s", "source": source, **stream}], "model": {"intra_op_threads": 2}}


def test_realtime_paces_a_file_at_its_frame_rate(small_clip):
    t0 = time.monotonic()
    results = _results(_cfg({"type": "file", "path": str(small_clip), "realtime": True}))
    elapsed = time.monotonic() - t0
    assert len(results) + sum(results[-1].drops.values()) == 40
    assert elapsed >= 39 / 30 - 0.05, f"40 frames at 30 fps took only {elapsed:.2f} s"


def test_loop_keeps_indices_and_pts_increasing(small_clip):
    cfg = _cfg({"type": "file", "path": str(small_clip), "loop": True})
    with Pipeline.from_config(cfg) as p:
        got = []
        for r in p:
            got.append((r.frame_index, r.pts))
            if len(got) == 100:
                p.stop()
    idx = [i for i, _ in got[:100]]
    pts = [t for _, t in got[:100]]
    assert idx == list(range(100))
    assert all(b > a for a, b in zip(pts, pts[1:])), "pts increase across loops"
    assert pts[45] == pytest.approx(45 / 30, abs=0.02)


def test_start_seconds_and_max_fps(small_clip):
    results = _results(_cfg({"type": "file", "path": str(small_clip), "start_seconds": 0.5}))
    assert results[0].pts == pytest.approx(0.5, abs=0.02) and len(results) == 40 - 15
    halved = _results(_cfg({"type": "file", "path": str(small_clip)}, max_fps=10))
    assert len(halved) == 14 and halved[-1].drops.get("max_fps") == 26
    gaps = [b.pts - a.pts for a, b in zip(halved, halved[1:])]
    assert all(g == pytest.approx(0.1, abs=0.01) for g in gaps), "evenly spaced"


def _first_session(cfg: dict) -> tuple[list[int], object]:
    """Frame indices of a live URL source's first session (it reconnects at the end of
    the file: the first result with the gap marker ends it), and the stream's counters."""
    with Pipeline.from_config(cfg) as p:
        got = []
        for r in p:
            if r.gap:
                p.stop()
                continue
            got.append(r.frame_index)
        return got, p.streams["s"]


def remux(src_path, dst_path, format: str, options: dict | None = None) -> None:
    """Copy the video packets of ``src_path`` into another container format."""
    import av

    with av.open(str(src_path)) as src, av.open(str(dst_path), "w", format=format, options=options or {}) as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for pkt in src.demux(src.streams.video[0]):
            if pkt.dts is not None:
                pkt.stream = out
                dst.mux(pkt)


@contextlib.contextmanager
def serve_directory(directory):
    """A local HTTP server for ``directory`` on 127.0.0.1; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_url_source(small_clip, tmp_path):
    ts = tmp_path / "stream.ts"  # MPEG-TS: what HTTP live streams send; needs no seeking
    remux(small_clip, ts, "mpegts")
    with serve_directory(tmp_path) as base:
        url = f"{base}/{ts.name}"
        got, stats = _first_session(_cfg({"type": "url", "url": url, "max_attempts": 3}))
        # A live source takes what the network gives (here: faster than real time) and the
        # pipeline keeps up by dropping: every frame is a result or a counted drop.
        assert got and got == sorted(set(got))
        first_session_drops = max(got) + 1 - len(got)
        assert sum(stats.drops_snapshot().values()) >= first_session_drops
        assert stats.reconnects >= 1


def test_hls_url_source(small_clip, tmp_path):
    hls = tmp_path / "hls"
    hls.mkdir()
    remux(small_clip, hls / "index.m3u8", "hls", {"hls_time": "0.5", "hls_list_size": "0", "hls_playlist_type": "vod"})
    with serve_directory(hls) as base:
        url = f"{base}/index.m3u8"
        got, _ = _first_session(_cfg({"type": "url", "url": url, "max_attempts": 3}))
        assert got and got == sorted(set(got))  # a live source drops the oldest frames it cannot take


def test_missing_webcam_fails_clearly():
    from pipeline.core.errors import StageError

    cfg = _cfg({"type": "webcam", "device": "/dev/video99", "max_attempts": 2, "backoff_initial": 0.05})
    with pytest.raises(StageError, match=r"webcam /dev/video99 unreachable after 2 attempts"):
        _results(cfg)


def test_tracker_state_kept_or_reset_on_reconnect():
    import numpy as np

    from pipeline.core.items import EndOfStream, StreamInfo
    from pipeline.core.ring import RingBuffer
    from pipeline.core.stage import Bus
    from pipeline.core.stats import StreamStats
    from pipeline.track.config import TrackerConfig
    from pipeline.track.stage import TrackerStage
    from pipeline.vision.detections import Detections
    from pipeline.vision.result import Result

    def run(reset: bool) -> list[int]:
        inp, out = RingBuffer(64), RingBuffer(64)
        config = TrackerConfig(reset_on_reconnect=reset, minimum_consecutive_frames=1)
        stage = TrackerStage(Bus(), inp, [out], {"s": StreamStats("s")}, config)
        info = StreamInfo("s", "h264", 100, 100, 30.0, live=True)
        items = [info]
        for i in range(6):
            if i == 3:
                items.append(StreamInfo("s", "h264", 100, 100, 30.0, live=True))  # a reconnect
            box = [[10 + i, 10, 40 + i, 40]] if i != 3 else [[60, 60, 90, 90]]
            items.append(Result("s", i, None, 0.0, 100, 100, "m", Detections(box, [0.9], [0], (100, 100))))
        items.append(EndOfStream("s"))
        for it in items:
            inp.put(it)
        stage.start()
        assert stage.join(5)
        ids = []
        while (r := out.get_nowait()) is not None and not isinstance(r, EndOfStream):
            ids.append(int(r.detections.tracker_id[0]))
        return ids

    kept, reset = run(False), run(True)
    assert kept[:3] == [1, 1, 1] and reset[:3] == [1, 1, 1]
    assert reset[3] == 1, "after a reset, ids start again"
    assert kept[3] == 2, "kept state: the new object gets a new id"
    assert np.all(np.array(kept[4:]) >= 1)


def test_live_sources_decode_with_low_delay_and_the_same_frames(small_clip):
    # Frame threading returns each frame a frame per extra thread late; live sources (here a
    # realtime file) decode each frame as it comes. Forced on a file, the frames are the same.
    def run(source: dict, **stream) -> tuple[str, list]:
        with Pipeline.from_config(_cfg(source, **stream)) as p:
            results = list(p)
        return p.summary()["streams"]["s"]["decoder"], [(r.frame_index, len(r.detections)) for r in results]

    live_decoder, _ = run({"type": "file", "path": str(small_clip), "realtime": True})
    assert live_decoder == "h264 (software; low delay)"
    off_decoder, _ = run({"type": "file", "path": str(small_clip), "realtime": True}, low_delay=False)
    assert off_decoder == "h264 (software)"
    file_decoder, frames = run({"type": "file", "path": str(small_clip)})
    forced_decoder, forced = run({"type": "file", "path": str(small_clip)}, low_delay=True)
    assert (file_decoder, forced_decoder) == ("h264 (software)", "h264 (software; low delay)")
    assert forced == frames and len(frames) == 40
