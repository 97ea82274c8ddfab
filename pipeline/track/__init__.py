"""Tracking layer: ByteTrack, its options, and the tracker stage.

It imports only pipeline.core, pipeline.vision and pipeline.wire (never app, infer,
sources or sinks), so a tracker can run on detections from anywhere. Submodules are
imported by name (``pipeline.track.bytetrack``, ...): importing this package loads none.
"""
