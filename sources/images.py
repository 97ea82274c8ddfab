"""Image folder source: every image file of a folder, in sorted order, as a stream.

The source only reads file bytes; the Decoder stage decodes them (OpenCV, GIL released),
so reading and decoding overlap as for video. Each packet's index is the file's position
in the sorted list and carries its path (``source_path`` on every result), so a file that
cannot be read or decoded is a counted drop at its own index, never a shift.

Example:
    >>> source = ImageFolderSource("shelf", ImagesSourceConfig(path="photos/"))   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from pipeline.core.errors import SourceError
from pipeline.core.items import Packet, StreamInfo
from sources.base import Source
from sources.config import ImagesSourceConfig

log = logging.getLogger("vidpipe.source.images")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageFolderSource(Source):
    def __init__(self, stream_id: str, config: ImagesSourceConfig) -> None:
        super().__init__(stream_id)
        self.config = config
        self.path = Path(config.path)
        self.files: list[Path] = []

    def expected_frames(self) -> int | None:
        return len(self.files)

    def describe(self) -> str:
        return f"images {self.path}"

    def open(self) -> None:
        if not self.path.exists():
            raise SourceError(f"image folder not found: {self.path}")
        if not self.path.is_dir():
            raise SourceError(f"not a folder: {self.path} (use type: file for a video)")
        self.files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {self.path}")
        super().open()

    def packets(self) -> Iterator[Packet | StreamInfo]:
        yield StreamInfo(self.stream_id, codec="image", fps=self.config.fps)  # pts = index / fps when set
        for i, f in enumerate(self.files):
            try:
                data = f.read_bytes()
            except OSError as exc:
                log.warning("stream %s: cannot read %s: %s", self.stream_id, f, exc)
                self.stats.drop("unreadable")
                continue
            pts = i / self.config.fps if self.config.fps else None
            yield self.make_packet(data, pts, index=i, source_path=str(f))
