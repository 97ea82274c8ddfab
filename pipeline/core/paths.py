"""Stream ids become parts of file names (``out/{stream}.mp4``): made safe here, so an id
such as ``../../escaped`` never writes outside the folder a sink was given.

Example:
    >>> safe_filename("../../escaped"), safe_filename("cam 1/left"), safe_filename("door-2.east")
    ('escaped', 'cam_1_left', 'door-2.east')
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    """``name`` as one path component: separators and other unsafe characters become ``_``,
    leading dots and underscores (``..``, hidden files) are dropped; never empty."""
    cleaned = _UNSAFE.sub("_", name).strip("._")
    return cleaned or "_"
