"""Image-folder results map back to their files (issue 14, case 6): every result carries
its ``source_path`` in each output format and over ZeroMQ, and a file that cannot be read
or decoded is a counted drop at its own index (its place in the sorted list), never a shift."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import Pipeline
from pipeline.wire.parse import WireError, parse_record, read_records
from sinks.config import ZmqSinkConfig
from sinks.subscriber import Subscriber
from sinks.zmq import ZmqSink
from sources.config import ImagesSourceConfig
from sources.images import ImageFolderSource

REPO = Path(__file__).resolve().parents[1]
NAMES = ["a.png", "b.jpg", "c.jpg", "d.png", "e.png", "f.png"]
UNDECODABLE, UNREADABLE = 2, 3  # c.jpg holds no image; d.png cannot be read (EIO)
DECODED = [0, 1, 4, 5]


@pytest.fixture
def folder(tmp_path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(NAMES):
        path = images / name
        if i == UNDECODABLE:
            path.write_bytes(b"not an image at all")
        elif i == UNREADABLE:
            path.symlink_to("/proc/self/mem")  # a regular file whose read fails (EIO), even for root
        else:
            image = np.full((96, 128, 3), 40 * i, np.uint8)
            cv2.circle(image, (64, 48), 20, (0, 0, 255), -1)
            assert cv2.imwrite(str(path), image)
    return images


def test_every_format_carries_the_file_and_its_own_index(folder, tmp_path):
    (tmp_path / "run.yaml").write_text(
        f"streams: [{{id: shelf, source: {{type: images, path: {folder}}}}}]\n"
        "model: {intra_op_threads: 1}\n"
        "sinks: [{type: jsonl, path: v.jsonl}, {type: jsonl, path: r.jsonl, format: roboflow},\n"
        "        {type: jsonl, path: i.jsonl, format: instill}]\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "run.yaml", "-q", "--summary", "s.json"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    expected = [(i, str(folder / NAMES[i])) for i in DECODED]
    for name in ("v.jsonl", "r.jsonl", "i.jsonl"):
        records = read_records(tmp_path / name)
        assert [(r.frame, r.source_path) for r in records] == expected, name
        assert all(r.raw["source_path"] == r.source_path for r in records)
    assert "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["drops"] == {"decode_error": 1, "unreadable": 1}
    assert summary["results"] == len(DECODED) and summary["errors"] == []


def test_records_without_source_path_still_parse():
    rec = parse_record({"schema": "vidpipe.result/1", "stream": "cam0", "frame": 3, "detections": []})
    assert rec.source_path is None
    with pytest.raises(WireError, match="source_path: expected a string"):
        parse_record({"schema": "vidpipe.result/1", "stream": "cam0", "frame": 3, "detections": [], "source_path": 7})


def test_the_subscriber_gets_the_file_of_each_result(folder, model):
    from tests.test_zmq import _run_in_thread, free_endpoint

    endpoint = free_endpoint()
    sink = ZmqSink(ZmqSinkConfig(endpoint=endpoint, mode="push", format="roboflow"))
    pipeline = Pipeline([ImageFolderSource("shelf", ImagesSourceConfig(path=folder))], model, [sink])
    with Subscriber(endpoint, mode="pull") as sub:
        thread, box = _run_in_thread(pipeline)
        got = list(itertools.islice(sub.iter(timeout_s=10), len(DECODED)))
        thread.join(30)
    assert "error" not in box, box.get("error")
    assert [(m.frame, m.record.source_path) for m in got] == [(i, str(folder / NAMES[i])) for i in DECODED]
    results = [m.to_result() for m in got]
    assert [r.source_path for r in results] == [str(folder / NAMES[i]) for i in DECODED]
    stream = box["summary"]["streams"]["shelf"]
    assert stream["drops"] == {"decode_error": 1, "unreadable": 1} and stream["results"] == len(DECODED)
