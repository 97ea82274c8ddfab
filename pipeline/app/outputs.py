"""Outputs never touch inputs and never collide: every file a sink will write (templates
expanded for each stream, paths resolved) is checked against every input and every other
output before anything opens, with one clear line naming both config fields.

Example:
    >>> from pipeline.app.config import load_config_dict
    >>> cfg = load_config_dict({"streams": [{"id": "cam0", "source": {"type": "file", "path": "in/cam0.mp4"}}],
    ...                         "sinks": [{"type": "video", "path": "in/{stream}.mp4"}]})
    >>> check_outputs(cfg)
    Traceback (most recent call last):
    ...
    pipeline.core.errors.ConfigError: sinks.0.path: in/cam0.mp4 is the input of streams.0 (in/cam0.mp4): an output never replaces an input
"""

from __future__ import annotations

from pathlib import Path

from pipeline.app.config import PipelineConfig
from pipeline.core.errors import ConfigError
from pipeline.core.paths import safe_filename
from sinks.config import JsonlSinkConfig, MasksSinkConfig, VideoSinkConfig
from sources.config import FileSourceConfig, ImagesSourceConfig


def _inputs(cfg: PipelineConfig) -> list[tuple[str, Path, bool]]:
    """(field, resolved path, is a folder) of every file or folder a stream reads."""
    found = []
    for i, stream in enumerate(cfg.streams):
        source = stream.source
        if isinstance(source, (FileSourceConfig, ImagesSourceConfig)):
            found.append((f"streams.{i}", Path(source.path).resolve(), isinstance(source, ImagesSourceConfig)))
    return found


def _outputs(cfg: PipelineConfig) -> list[tuple[str, str, Path]]:
    """(field, the path as written, resolved) of every file a sink writes: one per stream
    where the path has ``{stream}``; the folder of a mask template's images."""
    ids = [safe_filename(s.id) for s in cfg.streams]
    found = []
    for i, sink in enumerate(cfg.sinks):
        field = f"sinks.{i}.path"
        if isinstance(sink, JsonlSinkConfig):
            found.append((field, str(sink.path), Path(sink.path).resolve()))
        elif isinstance(sink, VideoSinkConfig):
            names = {sink.path.replace("{stream}", sid) for sid in ids} if "{stream}" in sink.path else {sink.path}
            found.extend((field, name, Path(name).resolve()) for name in sorted(names))
        elif isinstance(sink, MasksSinkConfig):
            for sid in ids:  # the images go into the template's folder for each stream
                folder = Path(sink.path.replace("{stream}", sid)).parent
                found.append((field, f"{folder}/", folder.resolve()))
    return found


def check_outputs(cfg: PipelineConfig) -> None:
    """Raise ConfigError if an output is an input, lies in an input folder, or is also
    written by another sink (however the two paths are spelled)."""
    inputs = _inputs(cfg)
    outputs = _outputs(cfg)
    for field, shown, out in outputs:
        for where, src, is_folder in inputs:
            if out == src or (is_folder and src in out.parents) or (is_folder and out == src):
                raise ConfigError(f"{field}: {shown} is the input of {where} ({_show(src)}): "
                                  "an output never replaces an input")
    seen: dict[Path, tuple[str, str]] = {}
    for field, shown, out in outputs:
        if out in seen and seen[out][0] != field:
            raise ConfigError(f"{seen[out][0]} and {field} both write {shown}: give each sink its own file")
        seen.setdefault(out, (field, shown))


def _show(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (as users wrote it)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
