"""``vidpipe serve --state FILE``: the server's pipelines, their streams and pauses, as JSON,
replaced atomically on each change (a temporary file beside it, then a rename: a crash
leaves the old file or the new one, never half of one) and read back at start.

Example:
    >>> import tempfile, pathlib
    >>> f = StateFile(pathlib.Path(tempfile.mkdtemp()) / "state.json")
    >>> f.read()
    []
    >>> f.write([{"id": "a", "spec": {"streams": []}}])
    >>> f.read()[0]["id"]
    'a'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError

SCHEMA = "vidpipe.serve-state/1"


class StateFile:
    """The JSON file of the pipelines (``{"schema", "pipelines": [{id, spec, ...}]}``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, pipelines: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"schema": SCHEMA, "pipelines": pipelines}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def read(self) -> list[dict[str, Any]]:
        """The pipelines written last; none if the file does not exist yet. ConfigError
        (one line naming the file) if it is not a state file."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"serve: --state {self.path}: not readable as JSON: {exc}") from None
        pipelines = data.get("pipelines") if isinstance(data, dict) and data.get("schema") == SCHEMA else None
        if not isinstance(pipelines, list) or not all(isinstance(p, dict) and isinstance(p.get("id"), str)
                                                       and isinstance(p.get("spec"), dict) for p in pipelines):
            raise ConfigError(f"serve: --state {self.path}: not a {SCHEMA} file")
        return pipelines
