"""Credentials never shown (issue 14, case 9): random credentials of any characters in
every URL form (user info raw or percent-encoded, query-string keys; rtsp/http/rtmp)
never appear in what the redaction returns, nor in any output of a real ``vidpipe run``
(stderr with -vv, the summary JSON, the JSONL results)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.app.config import apply_overrides, load_config_dict
from pipeline.core import redact
from pipeline.core.errors import ConfigError
from pipeline.core.redact import SECRET_KEYS, RedactingFilter, redact_obj, redact_text, redact_url

REPO = Path(__file__).resolve().parents[1]

# Any character a string can carry through YAML, argv and UTF-8 (no NUL, no lone surrogates).
SECRET = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=3, max_size=24)
# For whole runs: a rare first character, so that a secret such as "000" or "INFO" is not
# found in what a run rightly prints; the rest is any characters still.
RARE_SECRET = SECRET.map(lambda s: f"\u01c2{s}")
SCHEMES = st.sampled_from(["rtsp", "rtsps", "http", "https", "rtmp"])
KEYS = st.sampled_from([k for k in SECRET_KEYS if k not in redact.NAME_KEYS]).flatmap(
    lambda k: st.sampled_from([k, k.upper(), k.capitalize()]))


def url_forms(scheme: str, user: str, secret: str, key: str, host: str = "cam.local:554") -> dict[str, str]:
    """The same secret as a raw password, a percent-encoded one and a query-string value."""
    return {
        "userinfo": f"{scheme}://{user}:{secret}@{host}/live/x",
        "encoded": f"{scheme}://{quote(user, safe='')}:{quote(secret, safe='')}@{host}/live/x",
        "query": f"{scheme}://{host}/live/x?channel=1&{key}={quote(secret, safe='')}&user={quote(user, safe='')}",
    }


def _shown(secret: str, text: str, placeholder_text: str) -> bool:
    """The secret appears in ``text`` (and not merely because what is rightly shown contains it)."""
    return secret in text and secret not in placeholder_text


@settings(max_examples=1500, deadline=None)
@given(scheme=SCHEMES, user=SECRET, secret=SECRET, key=KEYS)
@example(scheme="rtsp", user="000", secret="err", key="password")  # found in CI: a secret inside a summary key
def test_no_url_form_shows_its_secret(scheme, user, secret, key):
    forms = url_forms(scheme, user, secret, key)
    skeleton = url_forms(scheme, "USERNAME", "PASSWORD", key)
    for form, url in forms.items():
        message = f"stream 'cam': cannot open '{url}': Connection refused; retrying in 0.5 s"
        clean = redact_text(message.replace(url, skeleton[form]), skeleton[form])
        with mock.patch.object(redact, "_known", set()):
            redact.register_secrets([url])
            in_summary = redact_obj({"errors": [message]})["errors"][0]  # type: ignore[index]
        for shown in (redact_url(url), redact_text(message, url), in_summary):
            assert not _shown(secret, shown, clean), (form, url, shown)
            assert not _shown(quote(secret, safe=""), shown, clean), (form, url, shown)


@settings(max_examples=1500, deadline=None)
@given(scheme=SCHEMES, secret=SECRET.filter(lambda s: not any(c.isspace() or c in "'\"<>" for c in s)), key=KEYS)
def test_patterns_alone_redact_urls_in_free_text(scheme, secret, key):
    """Without knowing the URL: user info (last "@" before the host) and secret query keys."""
    for form, url in url_forms(scheme, "admin", secret, key).items():
        message = f"error at {url} (attempt 3)"
        out = redact_text(message)
        clean = redact_text(f"error at {url_forms(scheme, 'admin', 'PASSWORD', key)[form]} (attempt 3)")
        assert not _shown(secret, out, clean) and not _shown(quote(secret, safe=""), out, clean), (url, out)


def test_the_issue_examples():
    assert redact_url("rtsp://user:p@ss3cret@host/x") == "rtsp://***@host/x"
    assert redact_url("rtsp://user:se/cret1@host/x") == "rtsp://***@host/x"
    assert redact_url("http://h/x?user=admin&password=secret2") == "http://h/x?user=***&password=***"
    assert redact_text("open 'rtsp://u:pa ss@h/x' failed", "rtsp://u:pa ss@h/x") == "open 'rtsp://***@h/x' failed"
    assert redact_url("rtsp://10.0.0.5/stream1") == "rtsp://10.0.0.5/stream1"  # nothing to hide: unchanged


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRET)
def test_config_errors_and_set_values_never_quote_the_secret(secret):
    def errors(password: str) -> list[str]:
        url = f"rtsp://admin:{password}@cam/x"
        out = []
        for source in ({"type": "rtsp", "url": url, "max_attempts": url},  # a URL echoed as a bad value
                       {"type": "rtsp", "url": "rtsp://cam/x", "options": {"password": [password]}}):  # an option
            with mock.patch.object(redact, "_known", set()), pytest.raises(ConfigError) as bad_field:
                load_config_dict({"streams": [{"id": "c", "source": source}]})
            out.append(str(bad_field.value))
        with mock.patch.object(redact, "_known", set()), pytest.raises(ConfigError) as bad_set:
            apply_overrides({}, [f"streams.0.source={{type: rtsp, url: {json.dumps(url)}"])
        return [*out, str(bad_set.value)]

    for shown, clean in zip(errors(secret), errors("PASSWORD")):
        assert not _shown(secret, shown, clean), shown


def test_the_logging_filter_redacts_messages_and_tracebacks():
    url = "rtsp://op:p a@ss'wd@cam/x"
    with mock.patch.object(redact, "_known", set()):
        redact.register_secrets([url])
        try:
            raise OSError(f"cannot open {url!r}")
        except OSError:
            record = logging.LogRecord("vidpipe.x", logging.ERROR, __file__, 1, "source %s failed", (url,), sys.exc_info())
        assert RedactingFilter().filter(record)
        text = logging.Formatter().format(record)
    assert "p a@ss'wd" not in text and "ss'wd" not in text and "***@cam/x" in text, text


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("redaction-run")


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=RARE_SECRET, secret=RARE_SECRET, key=KEYS)
def test_a_real_run_never_shows_a_secret(run_dir, user, secret, key):
    """Unreachable cameras (a closed port on 127.0.0.1) in every form, and a synthetic
    stream so there are results: -vv stderr, the summary and the JSONL hold no secret."""
    port = _closed_port()
    live = {"max_attempts": 2, "backoff_initial": 0.05, "backoff_max": 0.05, "open_timeout": 2}
    streams = [{"id": "sim", "source": {"type": "synthetic", "frames": 3, "width": 160, "height": 96}}]
    for i, (scheme, form) in enumerate([("rtsp", "userinfo"), ("rtmp", "userinfo"), ("http", "query"), ("rtsp", "encoded")]):
        url = url_forms(scheme, user, secret, key, f"127.0.0.1:{port}")[form]
        streams.append({"id": f"cam{i}", "source": {"type": "rtsp" if scheme == "rtsp" else "url", "url": url, **live}})
    config = {"streams": streams, "model": {"intra_op_threads": 1}, "sinks": [{"type": "jsonl", "path": "r.jsonl"}]}
    (run_dir / "p.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    for f in ("r.jsonl", "s.json"):
        (run_dir / f).unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-vv", "run", "p.yaml", "--summary", "s.json", "-q"],
                          cwd=run_dir, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          timeout=180, encoding="utf-8", errors="replace")
    assert proc.returncode == 1, proc.stderr[-3000:]  # the cameras failed; the synthetic stream ran
    assert "unreachable after 2 attempts" in proc.stderr and "***" in proc.stderr
    summary = json.loads((run_dir / "s.json").read_text(encoding="utf-8"))
    results = (run_dir / "r.jsonl").read_text(encoding="utf-8")
    assert summary["streams"]["sim"]["results"] == 3 and len(results.splitlines()) == 3
    outputs = {"stderr": proc.stderr, "summary": json.dumps(summary, ensure_ascii=False),
               "summary file": (run_dir / "s.json").read_text(encoding="utf-8"), "results": results}
    for name, text in outputs.items():
        for shown in (secret, quote(secret, safe=""), user[1:] and f"{user}:"):
            assert shown not in text, f"{name} shows {shown!r}"


def test_a_known_secret_that_is_also_a_key_name_frees_no_value():
    """Found by hypothesis in CI: a registered secret "password" rewrote the key of
    ``password=000`` first, and the query net no longer saw the value."""
    with mock.patch.object(redact, "_known", set()):
        redact.register_config({"options": {"password": "password"}})
        out = redact_text("error at rtsp://cam/x?channel=1&password=000&user=admin (attempt 3)")
    assert "000" not in out and "admin" not in out, out


def test_a_secret_option_that_looks_like_a_url_is_registered_whole():
    with mock.patch.object(redact, "_known", set()):
        redact.register_config({"options": {"password": ["A://"]}})
        out = redact_text("got ['A://']")
    assert "A://" not in out and out.startswith("got ["), out
