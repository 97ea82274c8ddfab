"""Named variants of the synthetic world: how many objects, how often new ones arrive,
and static occluders.

* ``default``: up to 14 objects, no occluders (the world the bundled model was trained on);
* ``crowded``: up to 32 objects arriving three times as often, behind three posts of
  another texture: many objects hidden by each other and wholly hidden for a while (the
  hard held-out world for tracking).

A world's occluders come from their own generator seeded by the clip's seed, so the
objects of a seed do not depend on the occluders.

Example:
    >>> scene = make_scene(9, "crowded", 320, 180)
    >>> len(occluder_boxes(9, WORLDS["crowded"].occluders, 320, 180))
    3
    >>> make_scene(9, "sunny", 320, 180)
    Traceback (most recent call last):
    ...
    ValueError: unknown synthetic world 'sunny' (known: default, crowded)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sources.scene import SyntheticScene

#: Occluder widths, as a share of the frame width (a post wide enough to hide a small or
#: mid-sized object wholly for a while).
_OCCLUDER_WIDTH = (0.06, 0.13)


@dataclass(frozen=True)
class World:
    """A synthetic world's parameters (see the module docstring)."""

    max_objects: int = 14
    spawn_rate: float = 0.04
    occluders: int = 0


WORLDS: dict[str, World] = {
    "default": World(),
    "crowded": World(max_objects=32, spawn_rate=0.12, occluders=3),
}


def occluder_boxes(seed: int, count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """``count`` upright posts (x0, y0, x1, y1) in frame pixels, spread across the width so
    that they do not overlap, each spanning most of the height."""
    if count <= 0:
        return []
    rng = np.random.default_rng([int(seed), 2])
    slot = width / count
    out = []
    for k in range(count):
        w = int(width * rng.uniform(*_OCCLUDER_WIDTH))
        x0 = int(k * slot + rng.uniform(0, max(1.0, slot - w)))
        top = int(height * rng.uniform(0.0, 0.25))
        bottom = int(height * rng.uniform(0.75, 1.0))
        out.append((x0, top, min(width, x0 + w), bottom))
    return out


def make_scene(seed: int, world: str = "default", width: int = 1280, height: int = 720, fps: float = 30.0,
               script: list[dict] | None = None, occluders: Sequence[tuple[int, int, int, int]] = ()) -> SyntheticScene:
    """The scene of ``world`` for ``seed``; ``script`` and ``occluders`` (pixel boxes)
    replace the random objects and add occluders (tests)."""
    if world not in WORLDS:
        raise ValueError(f"unknown synthetic world {world!r} (known: {', '.join(WORLDS)})")
    w = WORLDS[world]
    boxes = list(occluders) + occluder_boxes(seed, w.occluders, width, height)
    return SyntheticScene(seed, width, height, fps, max_objects=w.max_objects, spawn_rate=w.spawn_rate, script=script,
                          occluders=boxes)
