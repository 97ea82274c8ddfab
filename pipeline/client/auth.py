"""Where the API key travels, as Roboflow's servers read it: ``legacy`` puts it in the JSON
body (``api_key``) and, for GET requests, the query string; ``header`` sends only
``Authorization: Bearer KEY`` (no key in URLs or bodies, so none in logs); ``both``
does both, which works with servers old and new. No key: nothing is sent.

Example:
    >>> key_channels("k3y", "header")
    ({'Authorization': 'Bearer k3y'}, {}, {})
    >>> key_channels("k3y", "legacy")
    ({}, {'api_key': 'k3y'}, {'api_key': 'k3y'})
    >>> key_channels(None, "both")
    ({}, {}, {})
"""

from __future__ import annotations


def key_channels(api_key: str | None, transport: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(headers, JSON body fields, query parameters) carrying ``api_key``."""
    if api_key is None:
        return {}, {}, {}
    headers = {} if transport == "legacy" else {"Authorization": f"Bearer {api_key}"}
    legacy = {} if transport == "header" else {"api_key": api_key}
    return headers, dict(legacy), dict(legacy)
