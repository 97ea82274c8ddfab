"""Credentials never reach logs, errors, summaries, metrics or results: every place that
writes a URL, an error about one, or a config value goes through here.

Two nets, used together:

- patterns: the user info of any ``scheme://user:pass@host`` (the last ``@`` before the
  host ends it, so a password may hold ``@``, ``/`` or ``:``) and the values of query keys
  that carry secrets (``password``, ``token``, ``api_key`` ... any case);
- known secrets: the user name, password and secret query values of every configured URL
  (raw and percent-decoded), removed wherever they appear, whatever surrounds them. The
  CLI installs :class:`RedactingFilter` on its log handlers; the pipeline registers its
  URLs with :func:`register_secrets`.

Example:
    >>> redact_url("rtsp://admin:s3cret@10.0.0.5:554/stream1")
    'rtsp://***@10.0.0.5:554/stream1'
    >>> redact_url("rtsp://user:p@ss3cret@cam/x")
    'rtsp://***@cam/x'
    >>> redact_url("http://cam/x?user=admin&Password=secret2")
    'http://cam/x?user=***&Password=***'
    >>> redact_text("cannot open 'rtsp://admin:s3cret@cam/x': timeout", "rtsp://admin:s3cret@cam/x")
    "cannot open 'rtsp://***@cam/x': timeout"
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus

MASK = "***"
SECRET_KEYS = ("password", "passwd", "pass", "pwd", "secret", "token", "access_token", "refresh_token", "api_key",
               "apikey", "key", "auth", "authorization", "signature", "sig", "user", "username", "login", "credentials")
NAME_KEYS = ("user", "username", "login")  # a name alone is scrubbed only inside URLs, not everywhere
MIN_SECRET_LEN = 3  # shorter strings are not scrubbed from free text: they would eat ordinary words

_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.-]*://"
# In free text a URL ends at white space or a quote; inside it, the last "@" ends the user info.
_USERINFO = re.compile(rf"(?P<scheme>{_SCHEME})(?P<userinfo>[^\s'\"<>]*)@")
_QUERY = re.compile(rf"(?P<key>[?&;](?:{'|'.join(SECRET_KEYS)})=)(?P<value>[^&;#\s'\"<>]*)", re.IGNORECASE)

_known: set[str] = set()
_known_lock = threading.Lock()


def _userinfo_span(url: str) -> tuple[int, int] | None:
    """Where the user info of one URL lies: from after ``://`` to its last ``@``."""
    m = re.match(_SCHEME, url)
    if m is None:
        return None
    at = url.rfind("@", m.end())
    return (m.end(), at) if at >= 0 else None


def redact_url(url: str) -> str:
    """One URL with its user info and secret query values replaced by ``***``."""
    span = _userinfo_span(url)
    if span is not None:
        url = f"{url[:span[0]]}{MASK}{url[span[1]:]}"
    return _QUERY.sub(lambda m: m.group("key") + MASK, url)


def secrets_of(url: str) -> list[str]:
    """What of ``url`` must never be shown: the whole user info, the password and secret
    query values, each raw, percent-decoded and escaped as ``repr`` writes it (error
    messages quote file names that way), at least MIN_SECRET_LEN long."""
    found: set[str] = set()
    span = _userinfo_span(url)
    if span is not None:
        userinfo = url[span[0]:span[1]]
        found.update((userinfo, userinfo.partition(":")[2]))
    found.update(m.group("value") for m in _QUERY.finditer(url)
                 if m.group("key")[1:-1].lower() not in NAME_KEYS)
    found |= {unquote(s) for s in found} | {unquote_plus(s) for s in found}
    found |= {repr(s)[1:-1] for s in found} | {s.encode("unicode_escape").decode("ascii") for s in found}
    return sorted((s for s in found if len(s) >= MIN_SECRET_LEN), key=len, reverse=True)


def register_secrets(urls: Iterable[str]) -> None:
    """Remember the secrets of these URLs: every later :func:`redact_text` removes them."""
    with _known_lock:
        for url in urls:
            _known.update(secrets_of(url))


def known_secrets() -> list[str]:
    """The registered secrets, longest first (a secret inside another goes after it)."""
    with _known_lock:
        return sorted(_known, key=len, reverse=True)


def redact_text(text: str, *urls: str | None) -> str:
    """``text`` with every URL's user info, secret query values, the secrets of ``urls``
    and every registered secret replaced by ``***``."""
    # Every net marks spans of the original text, then each run of marked characters becomes
    # one mask: no net can hide a secret from another by rewriting the text first (a known
    # secret "password" would otherwise turn "password=x" into "***=x" and free the value).
    hidden = bytearray(len(text))
    extra = [s for url in urls if url for s in secrets_of(url)]
    for secret in {*extra, *known_secrets()}:
        start = text.find(secret)
        while start >= 0:
            hidden[start:start + len(secret)] = b"\x01" * len(secret)
            start = text.find(secret, start + 1)
    for m in _USERINFO.finditer(text):
        hidden[m.start("userinfo"):m.end("userinfo")] = b"\x01" * len(m.group("userinfo"))
    for m in _QUERY.finditer(text):
        hidden[m.start("value"):m.end("value")] = b"\x01" * len(m.group("value"))
    if not any(hidden):
        return text
    out, i = [], 0
    for run in re.finditer(b"\x01+", bytes(hidden)):
        out += [text[i:run.start()], MASK]
        i = run.end()
    out.append(text[i:])
    return "".join(out)


def redact_obj(obj: object) -> object:
    """``obj`` (nested dicts, lists, strings) with every string value redacted: for
    summaries. Keys are field names and stream ids, never secrets: a short secret such as
    "err" must not turn the key ``errors`` into ``***ors``."""
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


def register_config(data: object, secret: bool = False) -> None:
    """Register the secrets of a config (nested dicts and lists): those of every URL in it,
    and every value under a secret key (``password: ...``, ``token: ...``, e.g. in FFmpeg
    options), so that no error or log line echoing the config shows them."""
    if isinstance(data, dict):
        for key, value in data.items():
            name = key.lower() if isinstance(key, str) else ""
            register_config(value, secret or (name in SECRET_KEYS and name not in NAME_KEYS))
    elif isinstance(data, (list, tuple)):
        for value in data:
            register_config(value, secret)
    elif secret and isinstance(data, (str, int, float)) and not isinstance(data, bool):
        with _known_lock:
            _known.update(s for s in (str(data), repr(data)) if len(s) >= MIN_SECRET_LEN)
    elif isinstance(data, str) and re.match(_SCHEME, data):
        register_secrets([data])


class RedactingFilter(logging.Filter):
    """Redacts each record's message and traceback (patterns and registered secrets).
    Install it on handlers: a logger's filters do not see its children's records."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_filter(handlers: Iterable[logging.Handler]) -> None:
    """Put one :class:`RedactingFilter` on each handler (idempotent)."""
    for handler in handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
