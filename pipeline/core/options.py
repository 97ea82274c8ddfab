"""Option models shared by every layer: the one config form.

Each layer declares the options it reads as a pydantic model next to its code (sources,
sinks, inference, tracking); the app layer composes them into the pipeline YAML. The
validated objects travel down as they are: nothing re-validates them or copies their
fields by hand.

Example:
    >>> StreamOptions(infer_interval=2).ring_policy is None
    True
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.core.ring import RingPolicy


class Options(BaseModel):
    """Base of every option model: unknown fields are errors (a typo never passes silently),
    and a validated object is frozen (one object is shared by the stages that read it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# FFmpeg's hardware device types (av.codec.hwaccel.hwdevices_available() lists what this build has).
HwAccel = Literal["cuda", "vaapi", "qsv", "vdpau", "videotoolbox", "d3d11va", "dxva2", "drm", "opencl", "vulkan", "mediacodec"]


class StreamOptions(Options):
    """How one stream is processed, whatever its source."""

    ring_policy: RingPolicy | None = Field(None, description="frame ring policy; default: block for files, drop_oldest for live")
    infer_interval: int = Field(1, ge=1, description="inference on every N-th frame; the tracker carries the frames between")
    max_fps: float | None = Field(None, gt=0, description="keep evenly spaced frames up to this rate (the rest: drops 'max_fps')")
    hwaccel: HwAccel | None = Field(None, description="hardware decoding (cuda: NVDEC); falls back to software where unavailable")
    hwaccel_device: str | None = Field(None, description="the device, e.g. '1' for the second GPU; default: the first")
    low_delay: bool | None = Field(None, description="decode each frame as it comes (slice threading) instead of frame "
                                   "threading, which holds back a frame per extra thread; default: on for live sources")
