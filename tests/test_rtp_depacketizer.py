"""vidpipe's RTP depacketiser on hand-built RTP packets (FU-A, STAP-A, H.265 fragmentation and
aggregation, sequence gaps, timestamp wrap, lost markers), RTP headers, the SDP, and the
answers to Basic and Digest challenges (sources/rtsp)."""

from __future__ import annotations

import hashlib

import pytest

from sources.rtsp.auth import Credentials, parse_challenge
from sources.rtsp.depacketizer import Depacketizer
from sources.rtsp.rtp import RtpError, RtpPacket, parse_rtp
from sources.rtsp.sdp import parse_sdp

SPS, PPS = b"\x67\x64\x00\x1e\xac", b"\x68\xef\x0f\xcb"
IDR, SLICE = b"\x65" + bytes(range(1, 40)), b"\x41" + bytes(range(50, 70))
START = b"\x00\x00\x00\x01"


def rtp(seq: int, ts: int, payload: bytes, marker: bool = False) -> RtpPacket:
    return RtpPacket(marker, 96, seq % 65536, ts % 2**32, 1, payload)


def fu_a(nal: bytes, parts: int) -> list[bytes]:
    """``nal`` as ``parts`` FU-A payloads (RFC 6184 5.8)."""
    body, size = nal[1:], -(-(len(nal) - 1) // parts)
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    indicator = (nal[0] & 0xE0) | 28
    return [bytes([indicator, (0x80 if i == 0 else 0) | (0x40 if i == len(chunks) - 1 else 0) | (nal[0] & 0x1F)]) + c
            for i, c in enumerate(chunks)]


def stap_a(*nals: bytes) -> bytes:
    return b"\x18" + b"".join(len(n).to_bytes(2, "big") + n for n in nals)


def push_all(d: Depacketizer, packets: list[RtpPacket]) -> list:
    return [au for p in packets for au in d.push(p)]


# -- the depacketiser -------------------------------------------------------------------------
def test_fu_a_fragments_and_stap_a_make_one_access_unit_on_the_marker():
    d = Depacketizer("h264")
    frags = fu_a(IDR, 3)
    packets = [rtp(10, 9000, stap_a(SPS, PPS))] + [rtp(11 + i, 9000, f, marker=i == 2) for i, f in enumerate(frags)]
    assert push_all(d, packets[:-1]) == [], "nothing before the marker"
    (au,) = d.push(packets[-1])
    assert au.data == START + SPS + START + PPS + START + IDR and au.keyframe and au.timestamp == 9000
    (p_frame,) = d.push(rtp(14, 12000, SLICE, marker=True))
    assert p_frame.data == START + SLICE and not p_frame.keyframe


def test_a_sequence_gap_drops_the_access_unit_and_waits_for_a_keyframe():
    d = Depacketizer("h264")
    assert push_all(d, [rtp(1, 0, IDR, marker=True)])
    frags = fu_a(SLICE, 3)
    # Packet 3 (the middle fragment) is lost: the unit is dropped, and so is the next P frame
    # (it refers to the lost one); the next IDR decodes again.
    lost = push_all(d, [rtp(2, 3000, frags[0]), rtp(4, 3000, frags[2], marker=True), rtp(5, 6000, SLICE, marker=True)])
    assert lost == [] and d.lost == 2
    (au,) = push_all(d, [rtp(6, 9000, IDR, marker=True)])
    assert au.keyframe and au.timestamp == 9000
    assert push_all(d, [rtp(7, 12000, SLICE, marker=True)])[0].data == START + SLICE


def test_units_before_the_first_keyframe_are_not_passed_on():
    d = Depacketizer("h264")
    assert push_all(d, [rtp(1, 0, SLICE, marker=True), rtp(2, 3000, SLICE, marker=True)]) == []
    assert d.before_keyframe == 2 and d.lost == 0
    assert len(push_all(d, [rtp(3, 6000, IDR, marker=True)])) == 1


def test_timestamps_unwrap_across_2_to_the_32():
    d = Depacketizer("h264")
    start = 2**32 - 3000
    aus = push_all(d, [rtp(65535, start, IDR, marker=True), rtp(0, start + 3000, SLICE, marker=True),
                       rtp(1, start + 6000, SLICE, marker=True)])
    assert [a.timestamp for a in aus] == [start, start + 3000, start + 6000]
    assert [a.timestamp - start for a in aus] == [0, 3000, 6000]  # sequence numbers wrapped too: no gap


def test_a_lost_marker_packet_is_closed_by_the_next_timestamp_and_duplicates_are_ignored():
    d = Depacketizer("h264")
    out = push_all(d, [rtp(1, 0, IDR), rtp(1, 0, IDR), rtp(2, 3000, SLICE, marker=True)])
    assert [a.data for a in out] == [START + IDR, START + SLICE]


def test_hevc_fragmentation_units_and_aggregation_packets():
    d = Depacketizer("hevc")
    vps, idr = b"\x40\x01\x0c\x01", b"\x26\x01" + bytes(range(30))  # VPS; IDR_W_RADL (type 19)
    ap = b"\x60\x01" + len(vps).to_bytes(2, "big") + vps
    fu = [b"\x62\x01" + bytes([0x80 | 19]) + idr[2:15], b"\x62\x01" + bytes([0x40 | 19]) + idr[15:]]
    (au,) = push_all(d, [rtp(1, 0, ap), rtp(2, 0, fu[0]), rtp(3, 0, fu[1], marker=True)])
    assert au.data == START + vps + START + idr and au.keyframe


def test_unsupported_or_malformed_payloads_drop_the_unit():
    d = Depacketizer("h264")
    assert push_all(d, [rtp(1, 0, b"\x19\x00\x01"), rtp(2, 0, IDR, marker=True)]) == []  # STAP-B: interleaved mode
    assert push_all(d, [rtp(3, 3000, b"\x18\x00\x09\x65", marker=True)]) == []  # STAP-A unit longer than the packet
    assert d.lost == 2
    with pytest.raises(ValueError, match="no RTP depacketiser for 'mjpeg'"):
        Depacketizer("mjpeg")


def test_rtp_header_with_csrc_extension_and_padding():
    header = bytes([0x80 | 0x20 | 0x10 | 1, 0x80 | 96, 0, 5, 0, 0, 0, 9, 0, 0, 0, 1])
    data = header + b"CSRC" + b"\x00\x01\x00\x01" + b"EXT!" + b"\x65\x01" + b"\x00\x00\x03"
    pkt = parse_rtp(data)
    assert (pkt.payload, pkt.marker, pkt.sequence, pkt.timestamp) == (b"\x65\x01", True, 5, 9)
    with pytest.raises(RtpError, match="version 1"):
        parse_rtp(bytes([0x40]) + bytes(11))
    with pytest.raises(RtpError, match="3 bytes"):
        parse_rtp(b"\x80\x60\x00")


# -- SDP and authentication -------------------------------------------------------------------
def test_sdp_of_hevc_and_of_a_codec_vidpipe_does_not_read():
    hevc = parse_sdp("m=video 0 RTP/AVP 97\r\na=rtpmap:97 H265/90000\r\na=fmtp:97 sprop-vps=QAE=;sprop-sps=QgE=;"
                     "sprop-pps=RAE=\r\na=control:rtsp://cam/track1\r\n", "rtsp://cam/")
    assert hevc.codec == "hevc" and hevc.extradata == START + b"\x40\x01" + START + b"\x42\x01" + START + b"\x44\x01"
    assert hevc.control == "rtsp://cam/track1" and hevc.fps is None
    mjpeg = parse_sdp("m=audio 0 RTP/AVP 0\nm=video 0 RTP/AVP 26\na=control:v\n", "rtsp://cam/live")
    assert mjpeg.codec is None and mjpeg.payload_type == 26 and mjpeg.control == "rtsp://cam/live/v"
    aggregate = parse_sdp("a=control:rtsp://cam/agg/\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\na=control:t1\n", "rtsp://cam/x")
    assert (aggregate.aggregate, aggregate.control) == ("rtsp://cam/agg/", "rtsp://cam/agg/t1")
    with pytest.raises(ValueError, match="no video media"):
        parse_sdp("v=0\nm=audio 0 RTP/AVP 0\n", "rtsp://cam/")


def test_basic_and_digest_answers():
    creds = Credentials.from_userinfo("op%40x:p%3Ass")
    assert creds is not None and (creds.user, creds.password) == ("op@x", "p:ss")
    assert creds.answer(['Basic realm="cam"'], "DESCRIBE", "rtsp://cam/") == "Basic b3BAeDpwOnNz"
    _, params = parse_challenge(creds.answer(['Basic realm="cam"', 'Digest realm="cam", nonce="abc"'], "DESCRIBE", "rtsp://cam/"))
    ha1, ha2 = (hashlib.md5(s.encode()).hexdigest() for s in ("op@x:cam:p:ss", "DESCRIBE:rtsp://cam/"))
    assert params["response"] == hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()  # Digest preferred
    assert "p:ss" not in repr(creds)
