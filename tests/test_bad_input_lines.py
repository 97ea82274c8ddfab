"""Bad input from issue 14's list (cases 15 and 16) ends in one line naming what and where,
exit code 2, and no traceback: real files through the real CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = """streams: [{id: c, source: {type: file, path: clip.mp4}}]
model: {intra_op_threads: 1}
sinks: [{type: jsonl, path: r.jsonl}]
"""


@pytest.fixture
def workdir(tmp_path, small_clip) -> Path:
    shutil.copy(small_clip, tmp_path / "clip.mp4")
    (tmp_path / "ok.yaml").write_text(CONFIG)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00streams")
    (tmp_path / "two.txt").write_text("a\nb\n")
    (tmp_path / "scalar.yaml").write_text("just a scalar\n")
    (tmp_path / "mixed.yaml").write_text("0: a\nx: b\n1: c\n")
    shutil.copy(small_clip.with_suffix(".gt.json"), tmp_path / "gt.json")
    (tmp_path / "folder").mkdir()
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "badmod.py").write_text('raise RuntimeError("boom at import")\n')
    return tmp_path


CASES = [
    (["run", "bin.yaml"], "config bin.yaml: not UTF-8 text"),
    (["run", "ok.yaml", "--set", "model.path=[unclosed"], "--set model.path: not a YAML value"),
    (["run", "ok.yaml", "--set", 'streams.0.source={type: rtsp, url: "rtsp://u:pw5ecret@h/x"'],
     "--set streams.0.source: not a YAML value"),
    (["run", "ok.yaml", "--set", "model.names_file=nope.txt"], "class names file nope.txt: not found"),
    (["run", "ok.yaml", "--set", "model.names_file=two.txt"], "names file two.txt gives 2 class names, the outputs have 3"),
    (["run", "ok.yaml", "--set", "model.names_file=scalar.yaml"],
     "class names file scalar.yaml: expected a list of names or a map {index: name}, found str"),
    (["run", "ok.yaml", "--set", "model.names_file=mixed.yaml"],
     "class names file mixed.yaml: a map's keys must be class indices 0..n-1 (found 0, 'x', 1)"),
    (["eval", "--results", "clip.mp4", "--gt", "gt.json"], "clip.mp4 line 1: not JSON (not UTF-8 text)"),
    (["run", "ok.yaml", "--set", "model.path=folder"], "model path is a folder, not an ONNX file: folder"),
    (["run", "ok.yaml", "--set", "sinks.0={type: callback, target: 'badmod:f'}"],
     "cannot import callback 'badmod:f': RuntimeError: boom at import"),
    (["run", "ok.yaml", "--summary", "/proc/no/s.json"], "--summary /proc/no/s.json: cannot"),
]


@pytest.mark.parametrize("args,expected", CASES, ids=[c[1][:28] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(workdir, args, expected):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{workdir / 'mods'}"}
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args, "-q"] if args[0] == "run" else
                          [sys.executable, "-m", "pipeline", *args], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidpipe: error: ") and expected in lines[0], proc.stderr
    assert "pw5ecret" not in proc.stderr
    assert not (workdir / "r.jsonl").exists(), "failed before any sink opened"


def test_subscribe_save_into_a_missing_folder_makes_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "subscribe", "tcp://127.0.0.1:1", "--save", "new/dir/r.jsonl",
                           "--timeout", "0.2"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "new" / "dir" / "r.jsonl").exists()
