"""A real RTSP server for the tests (GStreamer's gst-rtsp-server), run as its own process
under the system interpreter, which has python3-gi:

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --aus clip.aus --fps 30

It serves ``rtsp://127.0.0.1:PORT/cam``: H.264 (``--codec hevc``: H.265) access units read from ``--aus`` (records
of [u32 length, u8 keyframe, bytes], written by tests/rtsp_camera.py) pushed through
``appsrc`` at real-time rate, looping forever with timestamps that keep increasing
across loops; ``--log FILE`` records when each one was sent. It prints ``READY <port>``
once it listens. Ends on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import struct
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def read_access_units(path: str) -> list[tuple[bytes, bool]]:
    aus = []
    with open(path, "rb") as fh:
        while header := fh.read(5):
            length, key = struct.unpack("<IB", header)
            aus.append((fh.read(length), bool(key)))
    return aus


class Feeder:
    """Pushes the access units into one media's appsrc, paced by the wall clock."""

    def __init__(self, appsrc, aus: list[tuple[bytes, bool]], fps: float, log=None, timestamp_now: bool = False) -> None:
        self.appsrc, self.aus, self.fps, self.log = appsrc, aus, fps, log
        self.timestamp_now = timestamp_now  # appsrc stamps each buffer as it is pushed (do-timestamp)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        duration = int(Gst.SECOND / self.fps)
        start = time.monotonic()
        n = 0
        while not self.stop.is_set():
            data, _key = self.aus[n % len(self.aus)]
            delay = start + n / self.fps - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                return
            buf = Gst.Buffer.new_wrapped(data)
            if not self.timestamp_now:
                buf.pts = buf.dts = n * duration  # monotonic across loops
            buf.duration = duration
            if self.log is not None:  # when each access unit left (wall clock), for glass-to-result latency
                self.log.write(f"{time.time():.6f} {n % len(self.aus)}\n")
                self.log.flush()
            if self.appsrc.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                return
            n += 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--aus", required=True)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--codec", choices=("h264", "hevc"), default="h264", help="what the access units are")
    parser.add_argument("--log", help="append '<wall time> <access unit index>' for each access unit sent")
    parser.add_argument("--timestamp-now", action="store_true",
                        help="timestamp each access unit when pushed (the pipeline sends it at once; without this the "
                             "media sends it at its pts from the feeder's start, later by the session's set-up time)")
    args = parser.parse_args()
    log = open(args.log, "a") if args.log else None  # noqa: SIM115 - open for the server's life
    Gst.init(None)
    aus = read_access_units(args.aus)
    fps_frac = f"{round(args.fps * 1000)}/1000"
    h26x = "h264" if args.codec == "h264" else "h265"
    launch = (
        f"( appsrc name=src is-live=true format=time do-timestamp={'true' if args.timestamp_now else 'false'} min-latency=0 "
        f"caps=video/x-{h26x},stream-format=byte-stream,alignment=au,framerate={fps_frac} "
        f"! {h26x}parse config-interval=-1 ! rtp{h26x}pay name=pay0 pt=96 config-interval=1 )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    feeders: list[Feeder] = []

    def on_configure(_factory, media) -> None:
        element = media.get_element()
        pipeline = element
        while pipeline.get_parent() is not None:
            pipeline = pipeline.get_parent()
        # The media pipeline reports 20 ms of latency (none of appsrc, h264parse or
        # rtph264pay adds any: it comes from rtpbin's send path), so its sinks held every
        # packet 20 ms after the push. A camera sends an access unit as soon as it is
        # encoded: no latency to wait out. Each AU's marker packet now leaves < 1 ms after
        # the logged send time (measured with a raw RTSP client).
        pipeline.set_latency(0)
        appsrc = element.get_by_name_recurse_up("src")
        feeder = Feeder(appsrc, aus, args.fps, log, args.timestamp_now)
        feeders.append(feeder)
        media.connect("unprepared", lambda *_: feeder.stop.set())
        feeder.thread.start()

    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()

    def quit_(*_args) -> bool:
        for f in feeders:
            f.stop.set()
        loop.quit()
        return False

    # The loop blocks in C: GLib must deliver the signals, not Python's handlers.
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, quit_)
    print(f"READY {args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
