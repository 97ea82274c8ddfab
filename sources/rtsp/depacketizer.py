"""RTP payloads → access units: H.264 (RFC 6184, non-interleaved mode: single NAL units,
STAP-A, FU-A) and H.265 (RFC 7798 without DONL: single NAL units, aggregation packets,
fragmentation units).

An access unit goes out the moment its last packet (marker bit set) arrives, as Annex-B
bytes (each NAL unit after a 4-byte start code), which the decoder takes as it takes
FFmpeg's packets. FFmpeg's RTSP demuxer does not use the marker: its H.264 parser returns an
access unit when the next one begins, a whole frame interval later. A packet whose timestamp
differs from the unit being gathered also closes it (its marker packet was lost).

A gap in the sequence numbers drops the unit being gathered, and every unit after it until
one holds a keyframe (IDR; IRAP for H.265): its fragments cannot be stitched into anything
the decoder could use. So does the start of a session before its first keyframe.

Example:
    >>> from sources.rtsp.rtp import RtpPacket
    >>> d = Depacketizer("h264")
    >>> sps, idr = b"\\x67\\x42\\x00\\x1e", b"\\x65\\x88\\x80"
    >>> stap = b"\\x18" + len(sps).to_bytes(2, "big") + sps
    >>> d.push(RtpPacket(False, 96, 1, 3000, 0, stap))
    []
    >>> fu = [b"\\x7c\\x85" + idr[1:2], b"\\x7c\\x45" + idr[2:]]   # FU-A: start, then end
    >>> d.push(RtpPacket(False, 96, 2, 3000, 0, fu[0])) + d.push(RtpPacket(True, 96, 3, 3000, 0, fu[1]))
    [AccessUnit(data=b'\\x00\\x00\\x00\\x01gB\\x00\\x1e\\x00\\x00\\x00\\x01e\\x88\\x80', timestamp=3000, keyframe=True)]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sources.rtsp.rtp import RtpPacket, SequenceChecker, TimestampUnwrapper

log = logging.getLogger("vidpipe.source.rtp")

START_CODE = b"\x00\x00\x00\x01"
CODECS = ("h264", "hevc")  # FFmpeg's names, as StreamInfo carries them
H264_IDR, H264_STAP_A, H264_FU_A = 5, 24, 28
HEVC_AP, HEVC_FU, HEVC_PACI = 48, 49, 50
HEVC_IRAP = range(16, 22)  # BLA, IDR and CRA pictures: decoding can start there


class PayloadError(ValueError):
    """An RTP payload this depacketiser cannot take apart (unsupported or malformed)."""


@dataclass(frozen=True)
class AccessUnit:
    data: bytes  # Annex-B: every NAL unit after a 4-byte start code
    timestamp: int  # the RTP timestamp, unwrapped (never wraps, never jumps at 2³²)
    keyframe: bool


def _aggregated(payload: bytes, header: int) -> list[bytes]:
    """The NAL units of an aggregation packet (STAP-A, H.265 AP): 16-bit size, then the unit."""
    units, i = [], header
    while i < len(payload):
        if i + 2 > len(payload):
            raise PayloadError(f"aggregation packet cut short at byte {i} of {len(payload)}")
        size = int.from_bytes(payload[i:i + 2], "big")
        if size == 0 or i + 2 + size > len(payload):
            raise PayloadError(f"aggregation packet: a NAL unit of {size} bytes at byte {i} of {len(payload)}")
        units.append(payload[i + 2:i + 2 + size])
        i += 2 + size
    return units


class Depacketizer:
    """Access units of one RTP stream of ``codec`` ("h264" or "hevc"); :meth:`push` each
    packet in arrival order. ``lost`` counts the units dropped after sequence gaps (and
    unreadable payloads), ``before_keyframe`` those dropped before the first keyframe."""

    def __init__(self, codec: str) -> None:
        if codec not in CODECS:
            raise ValueError(f"no RTP depacketiser for {codec!r} (have {', '.join(CODECS)})")
        self.codec = codec
        self.lost = 0
        self.before_keyframe = 0
        self._sequence = SequenceChecker()
        self._unwrap = TimestampUnwrapper()
        self._nals: list[bytes] = []
        self._fragment: bytearray | None = None
        self._timestamp: int | None = None
        self._damaged = False  # the unit being gathered lost packets
        self._need_keyframe = True  # after a gap (and at the start): drop units until a keyframe
        self._keyframe_seen = False
        self._errors_logged = 0

    def push(self, packet: RtpPacket) -> list[AccessUnit]:
        """The access units this packet completes (usually none, or one on the marker)."""
        order = self._sequence.check(packet.sequence)
        if order == "stale":
            return []
        out: list[AccessUnit] = []
        timestamp = self._unwrap(packet.timestamp)
        if order == "gap":
            self._damaged = self._need_keyframe = True
            self._fragment = None
        if self._timestamp is not None and timestamp != self._timestamp and (self._nals or self._fragment or self._damaged):
            out += self._close()  # the previous unit's marker packet never came
        self._timestamp = timestamp
        try:
            self._take(packet.payload)
        except PayloadError as exc:
            self._damaged = self._need_keyframe = True
            self._fragment = None
            if self._errors_logged < 5:
                log.warning("RTP %s payload dropped: %s", self.codec, exc)
            self._errors_logged += 1
        if packet.marker:
            out += self._close()
        return out

    def _close(self) -> list[AccessUnit]:
        nals, timestamp = self._nals, self._timestamp
        damaged = self._damaged or self._fragment is not None  # a fragmented NAL unit never ended
        self._nals, self._fragment, self._damaged = [], None, False
        if damaged:
            self._need_keyframe = True  # later units refer to this one
            self.lost += 1
            return []
        if not nals or timestamp is None:
            return []
        keyframe = any(self._is_keyframe(n) for n in nals)
        if self._need_keyframe and not keyframe:
            if self._keyframe_seen:
                self.lost += 1
            else:
                self.before_keyframe += 1
            return []
        self._need_keyframe, self._keyframe_seen = False, self._keyframe_seen or keyframe
        return [AccessUnit(b"".join(START_CODE + n for n in nals), timestamp, keyframe)]

    def _is_keyframe(self, nal: bytes) -> bool:
        if self.codec == "h264":
            return nal[0] & 0x1F == H264_IDR
        return (nal[0] >> 1) & 0x3F in HEVC_IRAP

    def _take(self, payload: bytes) -> None:
        if len(payload) < (1 if self.codec == "h264" else 2):
            raise PayloadError(f"empty payload ({len(payload)} bytes)")
        if self.codec == "h264":
            self._take_h264(payload)
        else:
            self._take_hevc(payload)

    def _take_h264(self, payload: bytes) -> None:
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._nals.append(payload)
        elif kind == H264_STAP_A:
            self._nals.extend(_aggregated(payload, 1))
        elif kind == H264_FU_A:
            if len(payload) < 3:
                raise PayloadError(f"FU-A packet of {len(payload)} bytes")
            fu = payload[1]
            self._fragment_part(bytes([(payload[0] & 0xE0) | (fu & 0x1F)]), payload[2:], bool(fu & 0x80), bool(fu & 0x40))
        else:
            raise PayloadError(f"H.264 packet type {kind} (only single NAL units, STAP-A and FU-A: "
                               "packetization-mode 0 or 1)")

    def _take_hevc(self, payload: bytes) -> None:
        kind = (payload[0] >> 1) & 0x3F
        if kind < HEVC_AP:
            self._nals.append(payload)
        elif kind == HEVC_AP:
            self._nals.extend(_aggregated(payload, 2))
        elif kind == HEVC_FU:
            if len(payload) < 4:
                raise PayloadError(f"H.265 fragmentation unit of {len(payload)} bytes")
            fu = payload[2]
            header = bytes([(payload[0] & 0x81) | ((fu & 0x3F) << 1), payload[1]])
            self._fragment_part(header, payload[3:], bool(fu & 0x80), bool(fu & 0x40))
        else:
            raise PayloadError(f"H.265 packet type {kind} (PACI and unknown types are not supported)")

    def _fragment_part(self, header: bytes, body: bytes, start: bool, end: bool) -> None:
        if start:
            self._fragment = bytearray(header) + body
        elif self._fragment is None:
            raise PayloadError("a fragment without its start")
        else:
            self._fragment += body
        if end:
            self._nals.append(bytes(self._fragment))
            self._fragment = None
