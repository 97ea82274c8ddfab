"""Outputs never touch inputs, never collide and never replace an earlier run's results
unless told: every file a sink will write (templates expanded for each stream, paths
resolved) is checked against every input, every other output and what already exists
before anything opens, with one clear line naming the config fields (and its folder is
made). ``overwrite: true`` on a sink, or ``vidpipe run --overwrite`` (:func:`overwrite_all`),
lets it replace its files; a JSONL sink with ``mode: append`` adds to its file.

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

from pipeline.app.config import PipelineConfig, StreamConfig
from pipeline.core.errors import ConfigError
from pipeline.core.paths import safe_filename
from sinks.config import JsonlSinkConfig, MasksSinkConfig, VideoSinkConfig
from sinks.files import make_folder, refuse_existing
from sinks.masks import refuse_earlier_images
from sources.config import FileSourceConfig, ImagesSourceConfig


def _inputs(cfg: PipelineConfig, name: str | None = None) -> list[tuple[str, Path, bool]]:
    """(field, resolved path, is a folder) of every file or folder a stream reads (``name``:
    what to call the stream instead of its field)."""
    found = []
    for i, stream in enumerate(cfg.streams):
        source = stream.source
        if isinstance(source, (FileSourceConfig, ImagesSourceConfig)):
            found.append((name or f"streams.{i}", Path(source.path).resolve(), isinstance(source, ImagesSourceConfig)))
    return found


def _outputs(cfg: PipelineConfig, stream_ids: list[str] | None = None) -> list[tuple[str, str, Path]]:
    """(field, the path as written, resolved) of every file a sink writes: one per stream
    where the path has ``{stream}``; the folder of a mask template's images."""
    ids = [safe_filename(s) for s in (stream_ids if stream_ids is not None else [s.id for s in cfg.streams])]
    found = []
    for i, sink in enumerate(cfg.sinks):
        field = f"sinks.{i}.path"
        if isinstance(sink, JsonlSinkConfig):
            found.append((field, str(sink.path), Path(sink.path).resolve()))
        elif isinstance(sink, VideoSinkConfig):
            names = {sink.path.format(stream=sid) for sid in ids} if "{stream}" in sink.path else {sink.path}
            found.extend((field, name, Path(name).resolve()) for name in sorted(names))
        elif isinstance(sink, MasksSinkConfig):
            for sid in ids:  # the images go into the template's folder for each stream
                folder = Path(sink.path.replace("{stream}", sid)).parent
                found.append((field, f"{folder}/", folder.resolve()))
    return found


def overwrite_all(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` with every file sink allowed to replace its files (``vidpipe run --overwrite``)."""
    sinks = [s.model_copy(update={"overwrite": True}) if hasattr(s, "overwrite") else s for s in cfg.sinks]
    return cfg.model_copy(update={"sinks": sinks})


def check_existing(cfg: PipelineConfig, per_stream_only: bool = False) -> None:
    """Refuse an output that exists (one line naming the sink and the file) unless its sink
    may overwrite it or appends; make the folder of every output (or say why it cannot be).
    ``per_stream_only``: only the files made for each stream (a stream joining a run)."""
    ids = [s.id for s in cfg.streams]
    for i, sink in enumerate(cfg.sinks):
        name = f"sinks.{i} ({sink.type})"
        if per_stream_only and not (isinstance(sink, (VideoSinkConfig, MasksSinkConfig)) and "{stream}" in sink.path):
            continue
        if isinstance(sink, JsonlSinkConfig):
            if sink.mode != "append":
                refuse_existing(Path(sink.path), sink.overwrite, name)
            make_folder(Path(sink.path), name)
        elif isinstance(sink, VideoSinkConfig):
            for sid in ids if "{stream}" in sink.path else ids[:1]:
                path = Path(sink.path.format(stream=safe_filename(sid)))
                refuse_existing(path, sink.overwrite, name)
                make_folder(path, name)
        elif isinstance(sink, MasksSinkConfig):
            for sid in ids:
                refuse_earlier_images(sink.path, sid, sink.overwrite, name)
                make_folder(Path(sink.path.format(stream=safe_filename(sid), frame=0)), name)


def check_outputs(cfg: PipelineConfig) -> None:
    """Raise ConfigError if an output is an input, lies in an input folder, or is also
    written by another sink (however the two paths are spelled); then
    :func:`check_existing`."""
    _check_collisions(_inputs(cfg), _outputs(cfg))
    check_existing(cfg)


def check_added_stream(cfg: PipelineConfig, stream: StreamConfig, current: list[str]) -> None:
    """A stream joining a running pipeline (``current``: the ids it has): its input is none
    of the run's outputs, its own outputs (a file or folder per stream) collide with none
    and do not exist; a video sink without ``{stream}`` in its path takes one stream only."""
    for i, sink in enumerate(cfg.sinks):
        if isinstance(sink, VideoSinkConfig) and "{stream}" not in sink.path and current:
            raise ConfigError(f"sinks.{i}.path: {sink.path} has no '{{stream}}': its one file takes one stream, "
                              f"so stream {stream.id!r} cannot join")
    one = cfg.model_copy(update={"streams": [stream]})
    _check_collisions(_inputs(one, f"stream {stream.id!r}"), _outputs(cfg, [*current, stream.id]))
    check_existing(one, per_stream_only=True)


def _check_collisions(inputs: list[tuple[str, Path, bool]], outputs: list[tuple[str, str, Path]]) -> None:
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
