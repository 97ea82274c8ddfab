"""Multi-object tracking: ByteTrack with a batched Kalman motion model."""

from pipeline.tracker.bytetrack import ByteTrack

__all__ = ["ByteTrack"]
