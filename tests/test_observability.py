"""Metrics over HTTP while the multi-stream pipeline runs; the config schema; summaries."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

from pipeline import Pipeline
from pipeline.app.cli import main as cli_main
from pipeline.app.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_metrics_endpoint_while_multi_stream_runs(small_clip):
    overrides = [f"streams.{i}.source.frames=40" for i in range(3)]
    overrides += [f"streams.{i}.source.width=640" for i in range(3)] + [f"streams.{i}.source.height=360" for i in range(3)]
    overrides += [f"streams.3.source.path={small_clip}", "sinks=[]", "metrics.port=0"]
    cfg = load_config(CONFIGS / "multi_stream.yaml", overrides)
    pipeline = Pipeline.from_config(cfg)
    ids = list(pipeline.streams)
    assert len(ids) == 4
    seen: Counter = Counter()
    text = ""
    with pipeline:
        for r in pipeline:
            seen[r.stream_id] += 1
            if not text and all(seen[s] >= 5 for s in ids):
                text = _scrape(pipeline.metrics_port)  # while it runs
    assert text, "scraped during the run"
    for sid in ids:
        assert f'vidpipe_latency_seconds_count{{stream="{sid}"}}' in text
        assert f'vidpipe_stage_seconds_count{{stage="inference",stream="{sid}"}}' in text or sid == "cam2"
        assert f'vidpipe_stream_frames_total{{stream="{sid}"}}' in text
        current = [line for line in text.splitlines()
                   if line.startswith("vidpipe_stream_state{") and f'stream="{sid}"' in line and line.endswith(" 1.0")]
        assert len(current) == 1 and ('"streaming"' in current[0] or '"ended"' in current[0]), current
        assert f'vidpipe_ring_depth{{ring="frames:{sid}"}}' in text
        assert f'vidpipe_stage_fps{{stage="decoder:{sid}"}}' in text
    assert 'vidpipe_stage_busy_fraction{stage="inference:shapes-yolov8seg"}' in text
    summary = pipeline.summary()
    assert set(summary["latency_ms"]) == set(ids)
    assert all({"p50", "p95", "p99"} <= set(v) for v in summary["latency_ms"].values())


def test_config_schema_cli(capsys):
    assert cli_main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "PipelineConfig" and "streams" in schema["properties"]
    assert "RtspSourceConfig" in schema["$defs"] and "MetricsConfig" in schema["$defs"]


def test_metrics_port_in_use_is_a_clear_error(small_clip):
    import socket

    import pytest

    from pipeline.core.errors import VidpipeError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = {"streams": [{"id": "a", "source": {"type": "file", "path": str(small_clip)}}], "metrics": {"port": port}}
        with pytest.raises(VidpipeError, match=f"cannot listen on 127.0.0.1:{port}"):
            Pipeline.from_config(cfg).run(handle_signals=False)


def test_status_table_renders_every_stream(small_clip):
    import io

    from rich.console import Console

    from pipeline.app.cli import status_table

    cfg = {"streams": [{"id": n, "source": {"type": "file", "path": str(small_clip)}} for n in ("left", "right")]}
    pipeline = Pipeline.from_config(cfg)
    pipeline.run(handle_signals=False)
    out = io.StringIO()
    Console(file=out, width=120).print(status_table(pipeline, {"left": 30.0}))
    text = out.getvalue()
    assert "left" in text and "right" in text and "ended" in text and "40" in text and "30.0" in text
