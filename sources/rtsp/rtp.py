"""RTP packets (RFC 3550) as they come from an RTSP/TCP interleaved channel: the fixed
header, the payload without CSRCs, header extension and padding; 16-bit sequence numbers
checked for gaps and 32-bit timestamps unwrapped into a count that never goes back.

Example:
    >>> pkt = parse_rtp(bytes([0x80, 0xE0, 0x00, 0x07, 0, 0, 0x0B, 0xB8, 0, 0, 0, 1]) + b"\\x65abc")
    >>> pkt.marker, pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.payload
    (True, 96, 7, 3000, b'eabc')
    >>> unwrap = TimestampUnwrapper()
    >>> [unwrap(t) for t in (0xFFFFFF00, 0x00000100, 0xFFFFFFF0)]
    [4294967040, 4294967552, 4294967280]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
RTP_HEADER = struct.Struct(">BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
SEQUENCE_MOD = 1 << 16
TIMESTAMP_MOD = 1 << 32


class RtpError(ValueError):
    """A packet that is not RTP (too short, wrong version, bad lengths)."""


@dataclass(frozen=True)
class RtpPacket:
    marker: bool  # the last packet of an access unit (RFC 6184 5.1, RFC 7798 4.1)
    payload_type: int
    sequence: int
    timestamp: int  # 32-bit, in the media clock (90 kHz for video)
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """One RTP packet, or :class:`RtpError` saying what is wrong with it."""
    if len(data) < RTP_HEADER.size:
        raise RtpError(f"RTP packet of {len(data)} bytes (the header alone is {RTP_HEADER.size})")
    first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6} (expected {RTP_VERSION})")
    start = RTP_HEADER.size + 4 * (first & 0x0F)  # CSRC identifiers
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(data) < start + 4:
            raise RtpError("RTP header extension cut short")
        start += 4 + 4 * struct.unpack_from(">H", data, start + 2)[0]
    end = len(data)
    if first & 0x20:  # padding: its length is the last byte
        end -= data[-1]
    if start > end:
        raise RtpError(f"RTP header and padding ({start} + {len(data) - end} bytes) longer than the packet ({len(data)})")
    return RtpPacket(bool(second & 0x80), second & 0x7F, sequence, timestamp, ssrc, data[start:end])


class TimestampUnwrapper:
    """32-bit RTP timestamps → a 64-bit count: a step forward or back of less than half the
    range is taken as such, so the count crosses 2³² without a jump (a video clock wraps
    every 13 h at 90 kHz) and a reordered packet maps to a slightly smaller value."""

    def __init__(self) -> None:
        self._last: int | None = None

    def __call__(self, timestamp: int) -> int:
        if self._last is None:
            self._last = timestamp
            return timestamp
        delta = (timestamp - self._last) % TIMESTAMP_MOD
        if delta >= TIMESTAMP_MOD // 2:
            delta -= TIMESTAMP_MOD
        self._last += delta
        return self._last


class SequenceChecker:
    """Tells whether packets follow each other (sequence numbers modulo 2¹⁶): a packet
    after a missing one is a gap; a late or repeated one (behind the last) is stale."""

    def __init__(self) -> None:
        self._last: int | None = None

    def check(self, sequence: int) -> str:
        """"next", "gap" (packets are missing before this one) or "stale" (to be ignored)."""
        if self._last is None:
            self._last = sequence
            return "next"
        step = (sequence - self._last) % SEQUENCE_MOD
        if step == 0 or step >= SEQUENCE_MOD // 2:
            return "stale"
        self._last = sequence
        return "next" if step == 1 else "gap"
