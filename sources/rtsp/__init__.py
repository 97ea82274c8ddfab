"""vidpipe's own RTSP client for live cameras: RTSP/TCP interleaved, RTP depacketised into
H.264 / H.265 access units that go out on the marker bit (no frame interval of hold-back, as
FFmpeg's demuxer has). ``session`` runs a session, ``connection`` speaks RTSP on the socket,
``auth`` answers 401s, ``sdp`` reads the description, ``rtp`` the packets, ``depacketizer``
assembles access units. :class:`sources.live.LiveVideoSource` uses it for ``rtsp://`` with
``rtsp_transport: tcp`` (``client: auto``, the default, where the SDP offers H.264/H.265).
"""

from sources.rtsp.depacketizer import AccessUnit, Depacketizer
from sources.rtsp.sdp import VideoMedia, parse_sdp
from sources.rtsp.session import RtspSession

__all__ = ["AccessUnit", "Depacketizer", "RtspSession", "VideoMedia", "parse_sdp"]
