"""The SDP of an RTSP DESCRIBE (RFC 8866), as far as a video client needs it: the first
video media's codec, payload type, clock, control URL, frame rate, and its parameter sets
(``sprop-parameter-sets`` of H.264, ``sprop-vps/sps/pps`` of H.265) as Annex-B extradata, the
form FFmpeg gives the decoder.

Example:
    >>> sdp = '''v=0
    ... m=video 0 RTP/AVP 96
    ... a=rtpmap:96 H264/90000
    ... a=framerate:30
    ... a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAHg==,aM4G4g==
    ... a=control:stream=0'''
    >>> media = parse_sdp(sdp, "rtsp://127.0.0.1:8554/cam")
    >>> media.codec, media.payload_type, media.clock_rate, media.fps, media.control, media.aggregate
    ('h264', 96, 90000, 30.0, 'rtsp://127.0.0.1:8554/cam/stream=0', 'rtsp://127.0.0.1:8554/cam')
    >>> media.extradata.hex(" ")
    '00 00 00 01 67 42 00 1e 00 00 00 01 68 ce 06 e2'
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sources.rtsp.depacketizer import START_CODE

# RTP encoding names (upper case) → FFmpeg's codec names, for the codecs vidpipe depacketises.
CODEC_OF_ENCODING = {"H264": "h264", "H265": "hevc"}
HEVC_PARAMETER_SETS = ("sprop-vps", "sprop-sps", "sprop-pps")
STATIC_VIDEO_TYPES = {26: "JPEG", 31: "H261", 32: "MPV", 33: "MP2T", 34: "H263"}  # RFC 3551, 90 kHz; need no rtpmap


class SdpError(ValueError):
    """An SDP without a usable video media description."""


@dataclass(frozen=True)
class VideoMedia:
    encoding: str  # the RTP encoding name as offered ("H264", "H265", "JPEG", "MP4V-ES" ...)
    codec: str | None  # FFmpeg's name where vidpipe depacketises it, else None
    payload_type: int
    clock_rate: int
    control: str  # the URL to SETUP this media on
    aggregate: str  # the session's control URL (PLAY, keep-alive, TEARDOWN)
    profile: str  # the media's transport protocol: "RTP/AVP", "RTP/SAVP" ...
    fps: float | None = None
    extradata: bytes | None = None  # Annex-B parameter sets, where the SDP carries them
    packetization_mode: int = 0  # H.264: 0 single NAL units, 1 non-interleaved, 2 interleaved


def resolve_control(control: str, base: str) -> str:
    """A media's control URL: absolute as given, ``*`` for the base itself, else relative
    to the base (RFC 2326 C.1.1, joined with a slash as FFmpeg and most cameras do)."""
    if "://" in control:
        return control
    if control in ("", "*"):
        return base
    return base.rstrip("/") + "/" + control.lstrip("/")


def _fmtp(value: str) -> dict[str, str]:
    """``a=fmtp:<pt> k=v;k=v`` parameters (after the payload type), keys in lower case."""
    params = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep:
            params[key.strip().lower()] = val.strip()
    return params


def _annexb(sets: list[str], where: str) -> bytes | None:
    units = []
    for text in sets:
        for item in text.split(","):
            if not item.strip():
                continue
            try:
                units.append(base64.b64decode(item.strip(), validate=True))
            except (binascii.Error, ValueError) as exc:
                raise SdpError(f"{where}: parameter set {item.strip()!r} is not base64 ({exc})") from None
    return b"".join(START_CODE + u for u in units if u) or None


def _sections(text: str) -> tuple[list[str], list[list[str]]]:
    """The session-level lines and each media section's lines (its m= line first)."""
    session: list[str] = []
    media: list[list[str]] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    return session, media


def _attributes(lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        if line.startswith("a="):
            name, _, value = line[2:].partition(":")
            out.append((name.strip().lower(), value.strip()))
    return out


def parse_sdp(text: str, base_url: str) -> VideoMedia:
    """The first video media of ``text``; relative control URLs resolve against ``base_url``
    (the DESCRIBE's Content-Base, else its URL). :class:`SdpError` says what is missing."""
    session, sections = _sections(text)
    video = next((s for s in sections if s[0].startswith("m=video")), None)
    if video is None:
        raise SdpError(f"no video media in the SDP ({len(sections)} media)")
    fields = video[0][2:].split()
    if len(fields) < 4 or not fields[3].isdigit():
        raise SdpError(f"malformed media line {video[0]!r}")
    profile, payload_type = fields[2], int(fields[3])
    attrs = _attributes(video[1:])
    session_control = dict(_attributes(session)).get("control", "*")
    base = resolve_control(session_control, base_url)
    encoding, clock_rate, control, fps, params = "", 0, "", None, {}
    for name, value in attrs:
        head, _, rest = value.partition(" ")
        if name == "rtpmap" and head == str(payload_type):
            parts = rest.strip().split("/")
            encoding = parts[0].upper()
            clock_rate = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        elif name == "fmtp" and head == str(payload_type):
            params = _fmtp(rest)
        elif name == "control":
            control = value
        elif name == "framerate":
            try:
                fps = float(value) or None
            except ValueError:
                fps = None
    encoding = encoding or STATIC_VIDEO_TYPES.get(payload_type, "")
    if not encoding:
        raise SdpError(f"video payload type {payload_type} has no a=rtpmap (a dynamic type must name its codec)")
    codec = CODEC_OF_ENCODING.get(encoding)
    if codec == "h264":
        extradata = _annexb([params.get("sprop-parameter-sets", "")], "sprop-parameter-sets")
    elif codec == "hevc":
        extradata = _annexb([params.get(k, "") for k in HEVC_PARAMETER_SETS], "sprop-vps/sps/pps")
    else:
        extradata = None
    mode = params.get("packetization-mode", "0")
    return VideoMedia(encoding, codec, payload_type, clock_rate or 90000, resolve_control(control, base), base, profile,
                      fps, extradata, int(mode) if mode.isdigit() else 0)
