"""Output files that never destroy results: like ffmpeg, an existing output is refused
unless the sink may overwrite it, and a replaced file is written beside its target
(``<name>.partial``) and renamed over it on close, so a run killed mid-way leaves the
old results whole and the new partial ones under the ``.partial`` name.

A new file (no old results to protect) is written under its own name from the start: a
killed run leaves what it wrote where the user looks for it (whole JSON lines; an mp4
that plays up to its last fragment).

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> out = OutputFile(folder / "r.jsonl", overwrite=False, sink="jsonl")
    >>> out.begin() == folder / "r.jsonl"   # new: written in place
    True
    >>> _ = (folder / "r.jsonl").write_text("old\\n")
    >>> OutputFile(folder / "r.jsonl", overwrite=False, sink="jsonl").begin()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sinks.files.OutputExists: sink jsonl: .../r.jsonl exists: set overwrite: true on the sink (or run with --overwrite)
    >>> again = OutputFile(folder / "r.jsonl", overwrite=True, sink="jsonl")
    >>> again.begin().name, (folder / "r.jsonl").read_text()   # the old file is untouched until commit
    ('r.jsonl.partial', 'old\\n')
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.core.errors import VidpipeError

log = logging.getLogger("vidpipe.sink.files")

PARTIAL_SUFFIX = ".partial"


class OutputExists(VidpipeError):
    """An output file exists and its sink may not overwrite it."""


def partial_path(path: Path) -> Path:
    """Where the replacement of ``path`` is written until it is complete."""
    return path.with_name(path.name + PARTIAL_SUFFIX)


def refuse_existing(path: Path, overwrite: bool, sink: str) -> None:
    """OutputExists (one line naming the sink and the file) if ``path`` exists and may not
    be overwritten."""
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OutputExists(f"sink {sink}: {path} exists: set overwrite: true on the sink (or run with --overwrite)")


def make_folder(path: Path, sink: str) -> None:
    """The folder of ``path`` exists (made if missing), or one line saying why it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VidpipeError(f"sink {sink}: cannot create the folder of {path} ({exc.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise VidpipeError(f"sink {sink}: cannot write in the folder of {path}")


class OutputFile:
    """One output file's life: ``begin()`` says where to write, ``commit()`` puts it in
    place. ``append`` writes onto the existing file itself (never refused)."""

    def __init__(self, path: Path, overwrite: bool, sink: str, append: bool = False) -> None:
        self.path = Path(path)
        self.overwrite, self.sink, self.append = overwrite, sink, append
        self.writing: Path | None = None

    def check(self) -> None:
        """At start, before anything is written: refused if it exists (and may not be
        replaced), its folder made."""
        make_folder(self.path, self.sink)
        if not self.append:
            refuse_existing(self.path, self.overwrite, self.sink)

    def begin(self) -> Path:
        """The path to write now: the target (new file, or append) or its ``.partial``."""
        make_folder(self.path, self.sink)
        if self.append or not (self.path.exists() or self.path.is_symlink()):
            self.writing = self.path
            if not self.append:
                self._create_exclusive()
            return self.writing
        refuse_existing(self.path, self.overwrite, self.sink)
        self.writing = partial_path(self.path)
        log.info("sink %s: writing %s, renamed over %s when complete (a killed run leaves the old file and %s)",
                 self.sink, self.writing, self.path, self.writing.name)
        return self.writing

    def _create_exclusive(self) -> None:
        """Create the new file now, failing if another writer made it since the check."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise OutputExists(f"sink {self.sink}: {self.path} appeared while starting: "
                               "another run writes it?") from None
        except OSError as exc:
            raise VidpipeError(f"sink {self.sink}: cannot write {self.path} ({exc.strerror})") from None
        os.close(fd)

    @property
    def replacing(self) -> bool:
        """Whether the results go to a ``.partial`` file until commit."""
        return self.writing is not None and self.writing != self.path

    def commit(self) -> None:
        """The written file takes the target's place (atomically, one rename)."""
        if self.replacing:
            assert self.writing is not None
            os.replace(self.writing, self.path)
            log.info("sink %s: replaced %s", self.sink, self.path)
        self.writing = None
