"""Files as stand-ins for cameras: realtime pacing, loop, start_seconds; max_fps; http URLs."""

from __future__ import annotations

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


def test_http_url_source(small_clip, tmp_path):
    import av

    ts = tmp_path / "stream.ts"  # MPEG-TS: what HTTP live streams send; needs no seeking
    with av.open(str(small_clip)) as src, av.open(str(ts), "w", format="mpegts") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for pkt in src.demux(src.streams.video[0]):
            if pkt.dts is not None:
                pkt.stream = out
                dst.mux(pkt)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{ts.name}"
        cfg = _cfg({"type": "url", "url": url, "max_attempts": 3})
        with Pipeline.from_config(cfg) as p:
            got = []
            for r in p:
                if r.gap:  # the file ended and the live source reconnected: one session is enough
                    p.stop()
                    continue
                got.append(r.frame_index)
            stats = p.streams["s"]
        # A live source takes what the network gives (here: faster than real time) and the
        # pipeline keeps up by dropping: every frame is a result or a counted drop.
        assert got[0] == 0 and got == sorted(set(got))
        first_session_drops = max(got) + 1 - len(got)
        assert sum(stats.drops_snapshot().values()) >= first_session_drops
        assert stats.reconnects >= 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
