"""Credentials in URLs (``rtsp://user:pass@host``) never reach logs, errors, metrics or
results: every place that writes a URL or an error about one goes through here.

Example:
    >>> redact_url("rtsp://admin:s3cret@10.0.0.5:554/stream1")
    'rtsp://***@10.0.0.5:554/stream1'
    >>> redact_text("cannot open 'rtsp://admin:s3cret@cam/x': timeout", "rtsp://admin:s3cret@cam/x")
    "cannot open 'rtsp://***@cam/x': timeout"
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def redact_url(url: str) -> str:
    """The URL with any user:password replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", url)


def secrets_of(url: str) -> list[str]:
    """The user name and password of a URL, raw and percent-decoded (to scrub from text)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    for value in (parts.username, parts.password):
        if value:
            found.extend({value, unquote(value)})
    return [s for s in found if len(s) >= 3]


def redact_text(text: str, url: str | None = None) -> str:
    """``text`` with every URL's user info and the given URL's secrets removed."""
    out = _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
    if url:
        for secret in secrets_of(url):
            out = out.replace(secret, "***")
    return out
