"""JSON Lines sink: one ``vidpipe.result/1`` object per line, one line per result.

Each line is written with a single ``write`` call and the file is flushed every
``flush_every`` lines and on close, so a stopped run leaves only whole lines. An existing
file is refused unless ``overwrite`` (then the new one is written as ``<name>.partial`` and
renamed over it on close: see sinks/files.py) or ``mode: append`` (lines are added to it).

Example:
    >>> sink = JsonlSink(JsonlSinkConfig(path="out/results.jsonl", mask_format="polygon"))
    >>> sink.name, sink.path   # the file is made when the run starts (begin_run)
    ('jsonl:results.jsonl', PosixPath('out/results.jsonl'))
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO

from pipeline.core.errors import VidpipeError
from pipeline.vision.result import Result
from pipeline.wire.records import to_record
from sinks.base import Sink, check_config
from sinks.config import JsonlSinkConfig
from sinks.files import OutputFile

log = logging.getLogger("vidpipe.sink.jsonl")


class JsonlSink(Sink):
    """Writes each result as one line of ``config.path`` (format and masks per the config)."""

    lossless = True

    def __init__(self, config: JsonlSinkConfig, name: str | None = None) -> None:
        self.config = check_config(config, JsonlSinkConfig)
        self.path = Path(config.path)
        self.name = name or f"jsonl:{self.path.name}"
        self._file: IO[str] | None = None
        self._output = OutputFile(self.path, config.overwrite, self.name, append=config.mode == "append")
        self.lines = 0

    def open(self) -> None:
        self._output.check()  # the file itself is made when the run starts (``begin_run``):
        # a run that fails to start leaves no empty file behind to refuse the next run

    def begin_run(self) -> None:
        self._ensure_file()

    def _ensure_file(self) -> IO[str]:
        if self._file is None:
            path = self._output.begin()
            try:
                self._file = path.open("a" if self._output.append else "w", encoding="utf-8")
                if self._output.append and self._file.tell() > 0 and not _ends_with_newline(path):
                    self._file.write("\n")  # a killed run's last line stays its own (broken) line
            except OSError as exc:
                raise VidpipeError(f"cannot write results to {self.path}: {exc.strerror}") from exc
        return self._file

    def write(self, result: Result) -> None:
        file = self._ensure_file()
        cfg = self.config
        record = to_record(result, cfg.mask_format, cfg.polygon_precision, format=cfg.format)
        file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.lines += 1
        if self.lines % cfg.flush_every == 0:
            file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None
            self._output.commit()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"
