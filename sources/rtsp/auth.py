"""RTSP authentication: Basic and Digest (RFC 2617, as RTSP cameras use it: MD5, with or
without ``qop=auth``), answering a 401's ``WWW-Authenticate`` challenges; Digest is
preferred where both are offered. The credentials come from the URL's user info and are
never part of the request URL, a log line or an error (pipeline/core/redact.py).

Example (RFC 2617's own, section 3.5):
    >>> auth = Credentials("Mufasa", "Circle Of Life")
    >>> challenge = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
    ...              'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    >>> header = auth.answer([challenge], "GET", "/dir/index.html", cnonce="0a4f113b")
    >>> 'response="6629fae49393a05397450978507c4ef1"' in header
    True
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """A ``WWW-Authenticate`` value: its scheme (lower case) and parameters."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


@dataclass
class Credentials:
    """A user name and password; :meth:`answer` turns a challenge into an
    ``Authorization`` value for one request (a Digest answer counts its nonce's uses)."""

    user: str
    password: str = field(repr=False)  # never shown, even in a debugger's repr
    nonce_count: int = 0

    @classmethod
    def from_userinfo(cls, userinfo: str | None) -> Credentials | None:
        """``user:password`` of a URL (percent-decoded); None where the URL has none."""
        if not userinfo:
            return None
        user, _, password = userinfo.partition(":")
        return cls(unquote(user), unquote(password))

    def answer(self, challenges: list[str], method: str, uri: str, cnonce: str | None = None) -> str | None:
        """The ``Authorization`` value answering the best of ``challenges`` for ``method uri``,
        or None where no challenge is Basic or Digest (MD5)."""
        parsed = [parse_challenge(c) for c in challenges]
        digest = next((p for s, p in parsed if s == "digest" and p.get("algorithm", "MD5").upper() == "MD5"), None)
        if digest is not None:
            return self._digest(digest, method, uri, cnonce)
        if any(s == "basic" for s, _ in parsed):
            return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return None

    def _digest(self, challenge: dict[str, str], method: str, uri: str, cnonce: str | None) -> str:
        realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
        ha1 = _md5(f"{self.user}:{realm}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        fields = [f'username="{self.user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
        if "auth" in qops:
            self.nonce_count += 1
            nc, cnonce = f"{self.nonce_count:08x}", cnonce or os.urandom(8).hex()
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in challenge:
            fields.append(f'opaque="{challenge["opaque"]}"')
        return "Digest " + ", ".join(fields)
