"""vidpipe's own RTSP client (sources/rtsp) on real sockets: bad servers (garbage, 401,
Digest, an unknown codec), keep-alive and TEARDOWN with a scripted camera, and the real RTSP
server (the frames match FFmpeg's, H.264 and H.265; each access unit comes out on its marker,
before the next is sent). The depacketiser's own tests: tests/test_rtp_depacketizer.py."""

from __future__ import annotations

import bisect
import hashlib
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from pipeline.core.errors import SourceError
from pipeline.core.items import Packet, StreamInfo
from sources.config import RtspSourceConfig
from sources.live import LiveVideoSource, UnsupportedStream
from sources.rtsp.auth import parse_challenge
from sources.rtsp.session import RtspSession
from tests.rtsp_camera import read_stamp

IDR = b"\x65" + bytes(range(1, 40))  # an IDR slice NAL unit
START = b"\x00\x00\x00\x01"


# -- bad servers, on real sockets ---------------------------------------------------------------
class ScriptedServer:
    """A TCP server on 127.0.0.1 answering each RTSP request with ``reply(method, headers)``
    (bytes to send; None closes the connection); it records the requests. Stopped and joined
    on exit."""

    def __init__(self, reply: Callable[[str, dict[str, str]], bytes | None]) -> None:
        self.reply, self.requests = reply, []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() wakes to see the stop (closing would not wake it)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self.send_lock = threading.Lock()  # replies and (StreamingServer) RTP share the socket
        self._thread = threading.Thread(target=self._serve, name="test-scripted-rtsp")

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn, conn.makefile("rb") as rfile:
                conn.settimeout(10)
                try:
                    self._converse(conn, rfile)
                except OSError:
                    pass

    def _converse(self, conn: socket.socket, rfile) -> None:
        while (line := rfile.readline()).strip():
            method, url = line.decode().split(" ")[:2]
            headers = {"_url": url}
            while (h := rfile.readline().decode()).strip():
                k, _, v = h.partition(":")
                headers[k.strip().lower()] = v.strip()
            self.requests.append((method, headers))
            answer = self.reply(method, headers)
            if answer is None:
                return
            with self.send_lock:
                conn.sendall(answer)
            self.replied(method, conn)

    def replied(self, method: str, conn: socket.socket) -> None:
        """Called after each reply went out."""


def reply(status: str, cseq: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", *headers] + ([f"Content-Length: {len(body)}"] if body else [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_garbage_reply_is_a_clear_error_naming_the_url_redacted(caplog):
    with ScriptedServer(lambda m, h: b"HTTP/1.1 400 Bad Request\r\n\r\n") as server:
        url = f"rtsp://admin:Sup3rS3cret@127.0.0.1:{server.port}/cam"
        source = LiveVideoSource("cam", RtspSourceConfig(url=url, client="vidpipe", max_attempts=1, open_timeout=2))
        with pytest.raises(SourceError) as err:
            list(source.packets())
        # auto: what vidpipe's client cannot parse, FFmpeg is asked to read (here it cannot either)
        auto = LiveVideoSource("cam", RtspSourceConfig(url=url, max_attempts=1, open_timeout=2))
        with pytest.raises(SourceError, match="unreachable after 1 attempts"):
            list(auto.packets())
    assert "not an RTSP reply" in str(err.value) and "***@127.0.0.1" in str(err.value)
    assert "Sup3rS3cret" not in str(err.value) and "admin" not in str(err.value)
    assert auto.client == "ffmpeg" and any("cannot read it" in r.getMessage() and "not an RTSP reply" in r.getMessage()
                                           for r in caplog.records)
    assert not any("Sup3rS3cret" in r.getMessage() for r in caplog.records)


def test_401_without_credentials_and_digest_with_them():
    nonce = "n0nce"

    def answer(method: str, headers: dict[str, str]) -> bytes:
        if "authorization" not in headers:
            return reply("401 Unauthorized", headers["cseq"], f'WWW-Authenticate: Digest realm="cam", nonce="{nonce}"')
        return reply("200 OK", headers["cseq"], "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN",
                     body=b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")

    with ScriptedServer(answer) as server:
        with pytest.raises(SourceError, match=r"rtsp://127.0.0.1:\d+/cam: OPTIONS: 401 Unauthorized: it needs credentials"):
            RtspSession(f"rtsp://127.0.0.1:{server.port}/cam", 2, 2).describe()
        session = RtspSession(f"rtsp://op:pw@127.0.0.1:{server.port}/cam", 2, 2)
        try:
            media = session.describe()
        finally:
            session.close()
    assert media.codec == "h264"
    method, headers = server.requests[-1]
    _, params = parse_challenge(headers["authorization"])
    uri = f"rtsp://127.0.0.1:{server.port}/cam"
    ha1, ha2 = (hashlib.md5(s.encode()).hexdigest() for s in ("op:cam:pw", f"{method}:{uri}"))
    assert method == "DESCRIBE" and params["uri"] == uri and params["username"] == "op"
    assert params["response"] == hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()


def test_an_unknown_codec_falls_back_to_ffmpeg_or_is_a_clear_error(caplog):
    caplog.set_level(logging.INFO, logger="vidpipe")

    def answer(method: str, headers: dict[str, str]) -> bytes | None:
        if headers.get("user-agent") != "vidpipe":
            return None  # FFmpeg: hang up
        return reply("200 OK", headers["cseq"], body=b"m=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000\r\n")

    with ScriptedServer(answer) as server:
        url = f"rtsp://op:Sup3rS3cret@127.0.0.1:{server.port}/cam"
        strict = LiveVideoSource("cam", RtspSourceConfig(url=url, client="vidpipe", open_timeout=2))
        with pytest.raises(UnsupportedStream, match=r"rtsp://\*\*\*@127.0.0.1:\d+/cam offers JPEG over RTP/AVP") as err:
            list(strict.packets())
        assert "Sup3rS3cret" not in str(err.value) and strict.stats.state == "failed"
        auto = LiveVideoSource("cam", RtspSourceConfig(url=url, max_attempts=2, open_timeout=2, backoff_initial=0.05))
        with pytest.raises(SourceError, match="unreachable after 2 attempts"):
            list(auto.packets())
    assert any("offers JPEG over RTP/AVP: read through FFmpeg" in r.getMessage() for r in caplog.records)
    agents = [h.get("user-agent", "") for _, h in server.requests]
    assert agents.count("vidpipe") == 2 + 2, agents  # strict: OPTIONS, DESCRIBE; auto: the same, once
    assert any(a.startswith("Lavf") for a in agents), "FFmpeg read the camera after the fallback"


# -- a scripted camera that streams: keep-alive, TEARDOWN ------------------------------------
class StreamingServer(ScriptedServer):
    """A scripted camera that, once PLAYed, sends an IDR access unit (one RTP packet) every
    20 ms on channel 0 from its own thread (stopped and joined when the connection ends); it
    counts keep-alives (GET_PARAMETER) and notes the TEARDOWN."""

    def __init__(self, reply: Callable[[str, dict[str, str]], bytes | None]) -> None:
        super().__init__(reply)
        self.keepalives = threading.Semaphore(0)
        self.teardown = threading.Event()
        self._done = threading.Event()
        self._sender: threading.Thread | None = None

    def _converse(self, conn: socket.socket, rfile) -> None:
        try:
            super()._converse(conn, rfile)
        finally:
            self._done.set()
            if self._sender is not None:
                self._sender.join(5)

    def replied(self, method: str, conn: socket.socket) -> None:
        if method in ("GET_PARAMETER", "OPTIONS") and self._sender is not None:
            self.keepalives.release()
        elif method == "TEARDOWN":
            self.teardown.set()
        elif method == "PLAY" and self._sender is None:
            self._sender = threading.Thread(target=self._send_rtp, args=(conn,), name="test-rtp-sender")
            self._sender.start()

    def _send_rtp(self, conn: socket.socket) -> None:
        seq = 0
        while not self._done.wait(0.02):
            packet = bytes([0x80, 0x80 | 96]) + seq.to_bytes(2, "big") + (seq * 3000).to_bytes(4, "big") + bytes(4) + IDR
            try:
                with self.send_lock:
                    conn.sendall(b"$\x00" + len(packet).to_bytes(2, "big") + packet)
            except OSError:
                return  # the client hung up
            seq += 1


def _camera_script(timeout: int, refuse_get_parameter: bool = False) -> Callable[[str, dict[str, str]], bytes]:
    """Replies of a scripted H.264 camera whose sessions time out after ``timeout`` seconds."""

    def answer(method: str, headers: dict[str, str]) -> bytes:
        cseq = headers["cseq"]
        if method == "GET_PARAMETER" and refuse_get_parameter:
            return reply("501 Not Implemented", cseq)
        if method == "OPTIONS" and "session" not in headers:
            return reply("200 OK", cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
        if method == "DESCRIBE":
            return reply("200 OK", cseq, "Content-Base: rtsp://127.0.0.1/cam/",
                         body=b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n")
        if method == "SETUP":
            assert headers["transport"].startswith("RTP/AVP/TCP;unicast;interleaved=0-1")
            return reply("200 OK", cseq, f"Session: s3ss10n;timeout={timeout}", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
        assert headers.get("session") == "s3ss10n", (method, headers)
        return reply("200 OK", cseq)

    return answer


@pytest.mark.parametrize("get_parameter", ["taken", "refused"])
def test_keep_alive_every_half_session_timeout_and_teardown_on_close(get_parameter):
    with StreamingServer(_camera_script(timeout=1, refuse_get_parameter=get_parameter == "refused")) as server:
        session = RtspSession(f"rtsp://127.0.0.1:{server.port}/cam", 2, 2)
        try:
            session.describe()
            session.play()
            units = session.access_units()
            first = next(units)
            assert first.keyframe and first.data == START + IDR
            # Keep-alives go out every 0.5 s from the reading thread: two come within about
            # 50 access units (1 s at 50 a second); 150 (3 s) without them is a failure.
            read = 0
            for _ in range(2):
                while not server.keepalives.acquire(timeout=0.01):
                    next(units)
                    read += 1
                    assert read < 150, "no keep-alive after 3 s of a session with timeout=1"
        finally:
            session.close()
        assert server.teardown.wait(5), "TEARDOWN on close"
    methods = [m for m, _ in server.requests]
    assert methods[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"], methods
    # A GET_PARAMETER the server does not take: OPTIONS from then on, the session goes on.
    second = "GET_PARAMETER" if get_parameter == "taken" else "OPTIONS"
    assert methods[4:6] == ["GET_PARAMETER", second] and methods[-1] == "TEARDOWN", methods
    assert server.requests[2][1]["_url"] == "rtsp://127.0.0.1/cam/track1"  # the control URL under Content-Base
    assert server.requests[3][1]["_url"] == "rtsp://127.0.0.1/cam/"  # PLAY: the aggregate URL


def test_a_stopped_source_stage_tears_the_session_down():
    from pipeline.core.ring import RingBuffer
    from pipeline.core.stage import Bus
    from pipeline.core.stats import StreamStats
    from sources.stage import SourceStage

    with StreamingServer(_camera_script(timeout=60)) as server:
        source = LiveVideoSource("cam", RtspSourceConfig(url=f"rtsp://127.0.0.1:{server.port}/cam", open_timeout=2))
        ring: RingBuffer = RingBuffer(1000, "drop_oldest", "packets:cam")
        stage = SourceStage(source, Bus(), ring, StreamStats("cam"))
        stage.start()
        try:
            while not isinstance(ring.get(10), Packet):  # StreamInfo first, then access units
                pass
            assert source.client == "vidpipe"
        finally:
            stage.stop()
            assert stage.join(10), "the source stage ended"
        assert server.teardown.wait(5), "TEARDOWN when the stage stops"


# -- the real RTSP server ----------------------------------------------------------------------
def read_frames(source: LiveVideoSource, count: int):
    """Decode ``count`` frames of ``source`` as the Decoder stage does, from its first keyframe
    (FFmpeg's client passes on what comes before, which decodes to concealed pictures): its
    StreamInfo and ``[(stamp, md5 of the image, packet)]``."""
    info, ctx, frames, started = None, None, [], False
    for item in source.packets():
        if isinstance(item, StreamInfo):
            info, ctx = item, av.CodecContext.create(item.codec, "r")
            ctx.extradata, ctx.thread_type = item.extradata, "SLICE"
        elif isinstance(item, Packet) and (started := started or item.keyframe):
            for f in ctx.decode(item.data):
                image = f.to_ndarray(format="bgr24")
                frames.append((read_stamp(image), hashlib.md5(image.tobytes()).hexdigest(), item))
            if len(frames) >= count:
                source._stop.set()  # the stage's stop event: the source returns at its next packet
    return info, frames


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_frames_match_the_ffmpeg_path(rtsp_server, codec, request):
    aus = request.getfixturevalue("stamped_camera_aus" if codec == "h264" else "stamped_hevc_camera_aus")
    server = rtsp_server(fps=30, aus=aus, codec=codec)
    results: dict[str, tuple] = {}

    def run(client: str) -> None:
        source = LiveVideoSource("cam", RtspSourceConfig(url=server.url, client=client, open_timeout=5, stall_timeout=5))
        results[client] = read_frames(source, 45)

    threads = [threading.Thread(target=run, args=(c,), name=f"test-{c}") for c in ("vidpipe", "ffmpeg")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    (info_v, frames_v), (info_f, frames_f) = results["vidpipe"], results["ffmpeg"]
    assert info_v.codec == codec
    same = ("codec", "width", "height", "fps", "time_base", "extradata", "live")
    assert {k: getattr(info_v, k) for k in same} == {k: getattr(info_f, k) for k in same}
    for frames in (frames_v, frames_f):
        stamps = [s for s, _, _ in frames]
        assert all((b - a) % 60 == 1 for a, b in zip(stamps, stamps[1:])), stamps  # every frame, in order
    images_v, images_f = ({s: h for s, h, _ in f} for f in (frames_v, frames_f))
    common = set(images_v) & set(images_f)
    assert len(common) >= 20 and all(images_v[s] == images_f[s] for s in common), "the same pixels, frame for frame"
    pts = [p.pts for _, _, p in frames_v]
    steps = [b - a for a, b in zip(pts, pts[1:])]
    assert all(abs(s - 1 / 30) < 0.02 for s in steps), steps  # from the RTP clock (sent as pushed: ± jitter)


def test_an_access_unit_comes_out_before_the_next_is_sent(rtsp_server, stamped_camera_aus, tmp_path: Path):
    fps, log = 4.0, tmp_path / "sent.log"
    server = rtsp_server(fps=fps, aus=stamped_camera_aus, log=log)
    source = LiveVideoSource("cam", RtspSourceConfig(url=server.url, open_timeout=5, stall_timeout=5))
    _, frames = read_frames(source, 6)
    assert source.client == "vidpipe"
    sent: dict[int, list[float]] = {}
    for line in log.read_text().splitlines():
        t, index = line.split()
        sent.setdefault(int(index), []).append(float(t))
    sends = sorted(t for times in sent.values() for t in times)
    for stamp, _, packet in frames[1:]:  # the first may come with the session's start-up
        own = sent[stamp][bisect.bisect_right(sent[stamp], packet.captured_at) - 1]
        following = sends[bisect.bisect_right(sends, own)] if own < sends[-1] else float("inf")
        # FFmpeg's demuxer hands each one over when the next arrives: 250 ms after its send.
        assert packet.captured_at - own < 0.5 / fps and packet.captured_at < following, (stamp, packet.captured_at - own)
