"""Outputs never destroy inputs or each other, stream ids never escape a sink's folder, and
secret keys are private (issue 14, cases 1, 2, 10, 11): real files, the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _vidpipe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _config(tmp_path: Path, sinks: list[dict], stream_id: str = "cam0") -> Path:
    cfg = {"streams": [{"id": stream_id, "source": {"type": "file", "path": "in/cam0.mp4"}}],
           "model": {"intra_op_threads": 1}, "sinks": sinks}
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


@pytest.fixture
def workdir(tmp_path, small_clip) -> Path:
    (tmp_path / "in").mkdir()
    shutil.copy(small_clip, tmp_path / "in" / "cam0.mp4")
    return tmp_path


@pytest.mark.parametrize("sink", [
    {"type": "video", "path": "in/{stream}.mp4"},  # a template that resolves to the input
    {"type": "jsonl", "path": "in/cam0.mp4"},
    {"type": "jsonl", "path": "in/../in/./cam0.mp4"},
])
def test_an_output_on_the_input_is_refused_and_the_input_kept(workdir, sink):
    before = _sha(workdir / "in" / "cam0.mp4")
    proc = _vidpipe("run", str(_config(workdir, [sink])), "-q", cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert "sinks.0.path" in proc.stderr and "is the input of streams.0" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _sha(workdir / "in" / "cam0.mp4") == before


def test_two_sinks_on_one_file_by_different_spellings_are_refused(workdir):
    sinks = [{"type": "jsonl", "path": str(workdir / "out" / "r.jsonl")}, {"type": "jsonl", "path": "out/./r.jsonl"}]
    proc = _vidpipe("run", str(_config(workdir, sinks)), "-q", cwd=workdir)
    assert proc.returncode == 2 and "sinks.0.path and sinks.1.path both write" in proc.stderr, proc.stderr
    assert not (workdir / "out" / "r.jsonl").exists()


def test_a_stream_id_never_writes_outside_the_sink_folder(workdir):
    sinks = [{"type": "video", "path": "out/videos/{stream}.mp4"}, {"type": "jsonl", "path": "out/r.jsonl"}]
    proc = _vidpipe("run", str(_config(workdir, sinks, stream_id="../../escaped")), "-q", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert (workdir / "out" / "videos" / "escaped.mp4").stat().st_size > 0
    assert not (workdir / "escaped.mp4").exists() and not (workdir.parent / "escaped.mp4").exists()
    assert len((workdir / "out" / "r.jsonl").read_text().splitlines()) == 40


def test_secret_keys_are_private_and_never_replaced_silently(tmp_path):
    proc = _vidpipe("keys", "generate", "keys", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    secrets = sorted((tmp_path / "keys").glob("*.key_secret"))
    assert len(secrets) == 2
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets)
    before = {p.name: _sha(p) for p in secrets}
    again = _vidpipe("keys", "generate", "keys", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr and "server.key_secret" in again.stderr
    assert {p.name: _sha(p) for p in secrets} == before
    forced = _vidpipe("keys", "generate", "keys", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and {p.name: _sha(p) for p in secrets} != before
