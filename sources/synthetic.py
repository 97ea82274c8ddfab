"""The synthetic world as a vidpipe source (``type: synthetic``), and a clip writer.

Write a clip and its exact labels (COCO-style JSON with ``track_id``, RLE masks and
keypoints: centre, top, right, bottom, left, see sources/keypoints.py):

    python -m sources.synthetic --out clip.mp4 --gt clip.gt.json --frames 300 --seed 7
    python -m sources.synthetic --out hard.mp4 --gt hard.gt.json --seed 11 --world crowded

Example:
    >>> src = SyntheticSource("sim", SyntheticSourceConfig(seed=7, frames=2, width=320, height=180))
    >>> [type(p).__name__ for p in src.packets()]
    ['StreamInfo', 'Packet', 'Packet']
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.core.items import Packet, StreamInfo
from pipeline.vision import rle
from sources.base import Source
from sources.config import SyntheticSourceConfig
from sources.keypoints import KEYPOINT_NAMES, SKELETON
from sources.scene import CLASS_NAMES, FrameLabels
from sources.worlds import WORLDS, make_scene

log = logging.getLogger("vidpipe.source.synthetic")


class SyntheticSource(Source):
    """Renders frames of :class:`SyntheticScene` (raw packets: the decoder passes them on).
    ``realtime`` paces them at ``fps`` like a camera; ``frames=None`` runs until stopped."""

    def __init__(self, stream_id: str, config: SyntheticSourceConfig | None = None) -> None:
        super().__init__(stream_id)
        self.config = config or SyntheticSourceConfig()
        self.live = self.config.realtime

    def expected_frames(self) -> int | None:
        return self.config.frames

    def describe(self) -> str:
        return f"synthetic seed={self.config.seed} {self.config.width}x{self.config.height}"


    def packets(self) -> Iterator[Packet | StreamInfo]:
        scene = make_scene(self.config.seed, self.config.world, self.config.width, self.config.height, self.config.fps)
        yield StreamInfo(self.stream_id, None, self.config.width, self.config.height, self.config.fps, live=self.live)
        start = time.monotonic()
        i = 0
        while self.config.frames is None or i < self.config.frames:
            image, _ = scene.step()
            if self.config.realtime:
                delay = start + i / self.config.fps - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            yield self.make_packet(image, i / self.config.fps)
            i += 1


def _frame_annotations(labels: FrameLabels, first_id: int) -> list[dict]:
    image_id = labels.frame_index + 1
    out: list[dict] = []
    for obj in labels.objects:
        x0, y0, x1, y1 = obj.xyxy
        seg = rle.encode_crop(obj.mask, x0, y0, labels.height, labels.width)
        out.append({
            "id": first_id + len(out), "image_id": image_id, "category_id": obj.class_id + 1,
            "track_id": obj.track_id, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": int(obj.mask.sum()),
            "segmentation": seg, "iscrowd": 0, **_keypoint_fields(obj.keypoints),
        })
    return out


def _keypoint_fields(kpts: np.ndarray | None) -> dict:
    """COCO's ``keypoints`` [x1, y1, v1, ...] (source pixels) and ``num_keypoints`` (v > 0)."""
    if kpts is None:
        return {}
    return {"keypoints": [round(float(v), 3) for v in kpts.reshape(-1)], "num_keypoints": int((kpts[:, 2] > 0).sum())}


def _image_entry(labels: FrameLabels, file_name: str, fps: float) -> dict:
    return {"id": labels.frame_index + 1, "frame_index": labels.frame_index, "file_name": file_name,
            "width": labels.width, "height": labels.height, "pts": labels.frame_index / fps}


def _coco(images: list[dict], annotations: list[dict], fps: float) -> dict:
    categories = [{"id": i + 1, "name": n, "keypoints": list(KEYPOINT_NAMES), "skeleton": [list(e) for e in SKELETON]}
                  for i, n in enumerate(CLASS_NAMES)]
    return {"info": {"description": "vidpipe synthetic shapes ground truth", "fps": fps},
            "images": images, "annotations": annotations, "categories": categories}


def write_clip(out: Path, gt: Path | None, frames: int, seed: int, width: int = 1280, height: int = 720,
               fps: float = 30.0, crf: int = 18, gop: int = 30, script: list[dict] | None = None, world: str = "default",
               occluders: Sequence[tuple[int, int, int, int]] = ()) -> dict:
    """Encode ``frames`` frames of the seeded ``world`` (sources/worlds.py) as H.264 (PyAV)
    and write its labels to ``gt`` (also returned; empty without ``gt``). ``script``
    replaces the random objects by these and ``occluders`` (pixel boxes) adds posts in
    front of them (see SyntheticScene)."""
    if frames < 1:
        raise ValueError("frames must be >= 1")
    out.parent.mkdir(parents=True, exist_ok=True)
    scene = make_scene(seed, world, width, height, fps, script=script, occluders=occluders)
    rate = Fraction(fps).limit_denominator(1001)
    images: list[dict] = []
    annotations: list[dict] = []
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "g": str(gop), "bf": "0"}
        for _ in range(frames):
            image, labels = scene.step()
            if gt is not None:  # RLE at once: masks are not kept for the whole clip
                images.append(_image_entry(labels, out.name, fps))
                annotations.extend(_frame_annotations(labels, len(annotations) + 1))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    coco = _coco(images, annotations, fps)
    if gt is not None:
        gt.parent.mkdir(parents=True, exist_ok=True)
        gt.write_text(json.dumps(coco))
    return coco


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sources.synthetic", description="Write a synthetic clip and its labels.")
    parser.add_argument("--out", type=Path, required=True, help="output video (.mp4)")
    parser.add_argument("--gt", type=Path, help="ground-truth JSON (COCO-style, RLE masks, track_id)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--world", choices=sorted(WORLDS), default="default", help="sources/worlds.py")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must be WIDTHxHEIGHT, got {args.size!r}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    coco = write_clip(args.out, args.gt, args.frames, args.seed, width, height, args.fps, world=args.world)
    log.info("wrote %s (%d frames, %d labelled objects)%s", args.out, args.frames, len(coco["annotations"]),
             f" and {args.gt}" if args.gt else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
