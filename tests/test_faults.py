"""Faults: an exception in every stage type, SIGTERM mid-file, and bad input of every kind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import Pipeline
from pipeline.app.cli import main as cli_main
from pipeline.core.errors import StageError
from pipeline.track.stage import TrackerStage
from sinks.jsonl import JsonlSink
from sources.decoder import Decoder
from sources.file import VideoFileSource

REPO = Path(__file__).resolve().parents[1]


class Injected(RuntimeError):
    pass


def _fail_on(n: int, stamp: list):
    """A side effect raising on its n-th call, recording when."""
    calls = {"n": 0}

    def hit() -> None:
        calls["n"] += 1
        if calls["n"] == n:
            stamp.append(time.monotonic())
            raise Injected(f"injected failure on call {n}")

    return hit


def _patch_stage(kind: str, monkeypatch, pipeline: Pipeline, hit) -> None:
    if kind == "source":
        original = VideoFileSource.packets

        def packets(self):
            for item in original(self):
                hit()
                yield item

        monkeypatch.setattr(VideoFileSource, "packets", packets)
    elif kind == "decoder":
        original_decode = Decoder._decode
        monkeypatch.setattr(Decoder, "_decode", lambda self, p: (hit(), original_decode(self, p))[1])
    elif kind == "inference":
        original_post = pipeline.model.postprocess
        monkeypatch.setattr(pipeline.model, "postprocess", lambda *a: (hit(), original_post(*a))[1])
    elif kind == "tracker":
        original_fan = TrackerStage._fan_out
        monkeypatch.setattr(TrackerStage, "_fan_out", lambda self, item: (hit(), original_fan(self, item))[1])
    elif kind == "sink":
        original_write = JsonlSink.write
        monkeypatch.setattr(JsonlSink, "write", lambda self, r: (hit(), original_write(self, r))[1])


@pytest.mark.parametrize("kind,stage_name", [
    ("source", "source:cam0"), ("decoder", "decoder:cam0"), ("inference", "inference:shapes-yolov8seg"),
    ("tracker", "tracker"), ("sink", "sink:jsonl:r.jsonl"),
])
def test_exception_in_each_stage_surfaces_within_2s(kind, stage_name, small_clip, tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    cfg = {"streams": [{"id": "cam0", "source": {"type": "file", "path": str(small_clip)}}],
           "model": {"intra_op_threads": 1}, "sinks": [{"type": "jsonl", "path": str(out)}]}
    pipeline = Pipeline.from_config(cfg)
    stamp: list[float] = []
    _patch_stage(kind, monkeypatch, pipeline, _fail_on(8, stamp))
    with pytest.raises(StageError) as info:
        pipeline.run(handle_signals=False)
    elapsed = time.monotonic() - stamp[0]
    assert elapsed < 2.0, f"error took {elapsed:.2f} s to surface"
    err = info.value
    assert err.stage == stage_name and isinstance(err.error, Injected)
    assert "cam0" in str(err), "the stream is named"
    assert not any(s.alive for s in pipeline.stages), "no thread left alive"
    # Results produced before the failure are kept, as whole lines.
    for line in out.read_text().splitlines():
        json.loads(line)


def test_sigterm_mid_file_drains_gracefully(heldout_clip, tmp_path):
    out, summary = tmp_path / "r.jsonl", tmp_path / "summary.json"
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"""
streams: [{{id: cam0, source: {{type: file, path: "{heldout_clip[0]}"}}}}]
model: {{intra_op_threads: 1}}
sinks: [{{type: jsonl, path: "{out}"}}]
""")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(cfg), "--summary", str(summary), "-q"],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)  # polling a file another process writes: there is no event to wait on
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err  # 128 + SIGTERM, the shell's convention
    lines = out.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole
    assert 5 <= len(records) < 300, "stopped mid-file"
    assert [r["frame"] for r in records] == list(range(len(records)))
    s = json.loads(summary.read_text())
    assert s["frames"] == s["results"] + sum(s["drops"].values()), s
    assert s["results"] == len(records)
    assert s["streams"]["cam0"]["state"] == "stopped"


def _cli_error(capsys, argv: list[str]) -> str:
    code = cli_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _write_cfg(tmp_path: Path, text: str) -> str:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return str(p)


def test_bad_input_gives_one_line_and_exit_2(tmp_path, small_clip, capsys):
    synthetic = "streams: [{id: a, source: {type: synthetic, frames: 2}}]\n"
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, synthetic + "modle: {}\n")])
    assert "at modle: unknown field" in err
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, synthetic + "batching: {max_batch_size: many}\n")])
    assert "batching.max_batch_size" in err and "integer" in err
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, "streams: [{id: a, source: {type: file}}]\n")])
    assert "streams.0.source.path: Field required" in err
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, synthetic + "model: {path: /nope/model.onnx}\n")])
    assert "model file not found: /nope/model.onnx" in err
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("this is not a protobuf")
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, synthetic + f"model: {{path: {not_onnx}}}\n")])
    assert "cannot load" in err and "as an ONNX model" in err
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(4096))
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, f"streams: [{{id: a, source: {{type: file, path: {garbage}}}}}]\n")])
    assert "cannot read video" in err and "garbage.mp4" in err
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(small_clip.read_bytes()[: small_clip.stat().st_size // 2])
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, f"streams: [{{id: a, source: {{type: file, path: {truncated}}}}}]\n")])
    assert "truncated.mp4" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, f"streams: [{{id: a, source: {{type: images, path: {empty}}}}}]\n")])
    assert "no images" in err and str(empty) in err
    err = _cli_error(capsys, ["run", str(tmp_path / "missing.yaml")])
    assert "config file not found" in err
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, "streams: [unclosed\n")])
    assert "not valid YAML" in err
    err = _cli_error(capsys, ["run", _write_cfg(tmp_path, synthetic), "--set", "model.postprocess.class_filter=[hexagon]"])
    assert "hexagon" in err


def test_cli_subprocess_bad_config_has_no_traceback(tmp_path):
    cfg = _write_cfg(tmp_path, "streams: []\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", cfg], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("vidpipe: error: config error") and "Traceback" not in proc.stderr
