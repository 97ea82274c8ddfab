"""Configs: every shipped YAML validates; overrides; errors name the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.app.config import apply_overrides, load_config, load_config_dict
from pipeline.core.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_validate(path):
    cfg = load_config(path)
    assert cfg.streams


def test_overrides_set_nested_fields_and_list_items():
    data = {"streams": [{"id": "a", "source": {"type": "synthetic"}}]}
    apply_overrides(data, ["streams.0.source.frames=5", "model.postprocess.confidence=0.7", "tracker.type=bytetrack"])
    cfg = load_config_dict(data)
    assert cfg.streams[0].source.frames == 5
    assert cfg.model.postprocess.confidence == 0.7 and cfg.tracker.type == "bytetrack"
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(data, ["streams.3.id=x"])


@pytest.mark.parametrize("data,expected", [
    ({"streams": [{"id": "a", "source": {"type": "rtsq"}}]}, "streams.0.source"),
    ({"streams": [{"id": "a", "source": {"type": "synthetic"}}], "model": {"postprocess": {"mask_decode_mode": "exact"}}},
     "model.postprocess.mask_decode_mode"),
    ({"streams": [{"id": "a", "source": {"type": "synthetic"}, "infer_interval": 2}]}, "needs a tracker"),
    ({"streams": [{"id": "a", "source": {"type": "synthetic"}}, {"id": "a", "source": {"type": "synthetic"}}]}, "unique"),
    ({"streams": []}, "streams"),
])
def test_errors_name_the_field(data, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        load_config_dict(data)
