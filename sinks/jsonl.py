"""JSON Lines sink: one ``vidpipe.result/1`` object per line, one line per result.

Each line is written with a single ``write`` call and the file is flushed every
``flush_every`` lines and on close, so a stopped run leaves only whole lines.

Example:
    >>> sink = JsonlSink("out/results.jsonl")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO

from pipeline.vision.result import Result

from pipeline.core.errors import VidpipeError
from pipeline.wire.records import to_record
from sinks.base import Sink

log = logging.getLogger("vidpipe.sink.jsonl")


class JsonlSink(Sink):
    lossless = True

    def __init__(self, path: str | Path, mask_format: str = "rle", polygon_precision: float = 1.0,
                 flush_every: int = 1, name: str | None = None, format: str = "vidpipe") -> None:
        self.path = Path(path)
        self.mask_format = mask_format
        self.polygon_precision = polygon_precision
        self.flush_every = max(1, flush_every)
        self.format = format
        self.name = name or f"jsonl:{self.path.name}"
        self._file: IO[str] | None = None
        self.lines = 0

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise VidpipeError(f"cannot write results to {self.path}: {exc.strerror}") from exc

    def write(self, result: Result) -> None:
        assert self._file is not None, "sink not opened"
        record = to_record(result, self.mask_format, self.polygon_precision, format=self.format)
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.lines += 1
        if self.lines % self.flush_every == 0:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None
