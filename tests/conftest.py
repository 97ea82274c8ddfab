"""Shared fixtures: real encoded clips made by the synthetic writer, the bundled model."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


def _clip(media_dir: Path, name: str, frames: int, seed: int, size: str = "1280x720") -> tuple[Path, Path]:
    from sources.synthetic import main as write_main

    out, gt = media_dir / f"{name}.mp4", media_dir / f"{name}.gt.json"
    if not out.exists():
        assert write_main(["--out", str(out), "--gt", str(gt), "--frames", str(frames), "--seed", str(seed), "--size", size]) == 0
    return out, gt


@pytest.fixture(scope="session")
def small_clip(media_dir) -> Path:
    """40 frames, 640×360: fast, for runtime tests."""
    return _clip(media_dir, "small", 40, 11, "640x360")[0]


@pytest.fixture(scope="session")
def heldout_clip(media_dir) -> tuple[Path, Path]:
    """The held-out accuracy clip: seed 7 (training uses seeds >= 1000), 300 frames, 1280×720."""
    return _clip(media_dir, "heldout", 300, 7)


@pytest.fixture(scope="session")
def model():
    from pipeline.model import Model
    from pipeline.zoo import default_model_path

    return Model.load(default_model_path(), intra_op_threads=2)


@pytest.fixture(scope="session")
def gt_small(media_dir) -> dict:
    _, gt = _clip(media_dir, "small", 40, 11, "640x360")
    return json.loads(gt.read_text())


@pytest.fixture(autouse=True)
def no_thread_leak():
    """Every test must leave no vidpipe thread behind."""
    yield
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("vidpipe:") and t.is_alive()]
    for t in threading.enumerate():
        if t.name.startswith("vidpipe:"):
            t.join(3)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("vidpipe:") and t.is_alive()]
    assert not leftover, f"threads left alive: {leftover}"
