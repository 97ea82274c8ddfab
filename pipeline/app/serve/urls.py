"""Images given by URL (off by default): http(s) only, allow-listed hosts, every address the
host resolves to public (no loopback, private, link-local or reserved ranges: SSRF), no
redirects followed, a timeout and the body limit on the download.

Example:
    >>> UrlFetcher(UrlConfig(enabled=True), 1000).check("http://127.0.0.1:9001/x")
    Traceback (most recent call last):
    ...
    pipeline.app.serve.errors.ServeError: image URL host 127.0.0.1 resolves to 127.0.0.1, a loopback/private address: refused
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from pipeline.app.serve.config import UrlConfig
from pipeline.app.serve.errors import ServeError, bad_image, too_large


class UrlFetcher:
    """Downloads one image URL under the config's rules (blocking: call from a worker thread)."""

    def __init__(self, config: UrlConfig, max_bytes: int) -> None:
        self.config, self.max_bytes = config, max_bytes

    def _host_allowed(self, host: str) -> bool:
        allow = self.config.allow_hosts
        if not allow:
            return True
        return any(host == a or (a.startswith(".") and host.endswith(a)) for a in allow)

    def check(self, url: str) -> str:
        """The URL's host if it may be fetched (400/403 otherwise)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_image(f"image URL must be http(s)://host/...: {url[:100]!r}")
        host = parts.hostname.lower()
        if not self._host_allowed(host):
            raise ServeError(403, f"image URL host {host} is not in the server's allow-list")
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            raise bad_image(f"image URL host {host} does not resolve") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if not address.is_global and not self.config.allow_private:
                raise ServeError(403, f"image URL host {host} resolves to {address}, a loopback/private address: refused")
        return host

    def __call__(self, url: str) -> bytes:
        import httpx

        self.check(url)
        try:
            with httpx.stream("GET", url, follow_redirects=False, timeout=self.config.timeout_s) as response:
                if response.is_redirect:
                    raise bad_image(f"image URL answered a redirect ({response.status_code}): redirects are not followed")
                if response.status_code != 200:
                    raise bad_image(f"image URL answered HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise too_large(f"image at the URL is over the limit of {self.max_bytes} bytes")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise bad_image(f"image URL could not be fetched: {type(exc).__name__}") from None
