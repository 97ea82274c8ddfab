"""What ``infer_on_stream`` reads: the frames of a video file (index, BGR frame) or the
images of a folder (path, BGR image), in name order. OpenCV reads both: the client needs
none of vidpipe's source stages (whose decoder threads serve pipelines, not one caller).

Example:
    >>> import tempfile, cv2, numpy as np, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = cv2.imwrite(str(d / "b.png"), np.zeros((4, 4, 3), np.uint8)); _ = cv2.imwrite(str(d / "a.png"), np.zeros((4, 4, 3), np.uint8))
    >>> [pathlib.Path(ref).name for ref, _ in frames_of(str(d))]
    ['a.png', 'b.png']
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from pipeline.client.errors import InvalidInputFormatError


def _folder(folder: Path, extensions: Sequence[str]) -> Iterator[tuple[str, np.ndarray]]:
    wanted = {e.lower().lstrip(".") for e in extensions}
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") in wanted)
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InvalidInputFormatError(f"image file {str(path)!r}: not an image OpenCV can decode")
        yield str(path), image


def _video(path: str) -> Iterator[tuple[int, np.ndarray]]:
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise InvalidInputFormatError(f"video {path!r}: cannot be opened (not a video OpenCV can read)")
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield index, frame
            index += 1
    finally:
        capture.release()


def frames_of(input_uri: str, extensions: Sequence[str] = ("jpg", "jpeg", "png")) -> Iterator[tuple[int | str, np.ndarray]]:
    """(frame index, frame) of a video file or (path, image) of each image in a folder
    whose extension is one of ``extensions``; InvalidInputFormatError when ``input_uri``
    is neither."""
    if os.path.isdir(input_uri):
        yield from _folder(Path(input_uri), extensions)
    elif os.path.isfile(input_uri) or "://" in input_uri:
        yield from _video(input_uri)
    else:
        raise InvalidInputFormatError(f"stream {input_uri!r}: no such file or folder")
