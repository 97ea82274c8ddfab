"""CURVE key files (``vidpipe keys generate DIR`` writes them): loaded and checked, or one
clear line naming the file and what is wrong with it, never a traceback from ZeroMQ.

Example:
    >>> load_key("/nonexistent/server.key", "CURVE server public key")
    Traceback (most recent call last):
    ...
    pipeline.core.errors.VidpipeError: CURVE server public key /nonexistent/server.key: not found
"""

from __future__ import annotations

import struct
from pathlib import Path

import zmq.auth
from zmq.utils import z85

from pipeline.core.errors import VidpipeError

KEY_LEN = 40  # a Z85-encoded 32-byte CURVE key


def _check(key: bytes, what: str, path: Path, part: str) -> bytes:
    try:
        ok = len(key) == KEY_LEN and len(z85.decode(key)) == 32
    except (ValueError, LookupError, TypeError, struct.error):  # what z85.decode raises on garbage
        ok = False
    if not ok:
        raise VidpipeError(f"{what} {path}: its {part} is not a CURVE key (40 Z85 characters)")
    return key


def load_key(path: str | Path, what: str, need_secret: bool = False) -> tuple[bytes, bytes | None]:
    """``(public, secret)`` of a certificate file; with ``need_secret`` the secret must be
    there (a ``.key_secret`` file, not the public ``.key``). ``what`` names it in errors."""
    p = Path(path)
    if not p.is_file():
        raise VidpipeError(f"{what} {p}: {'a folder, not a key file' if p.is_dir() else 'not found'}")
    try:
        public, secret = zmq.auth.load_certificate(str(p))
    except ValueError:
        raise VidpipeError(f"{what} {p}: not a ZeroMQ certificate (no public-key line)") from None
    except OSError as exc:
        raise VidpipeError(f"{what} {p}: cannot read it ({exc.strerror or exc})") from None
    _check(public, what, p, "public-key")
    if secret is None:
        if need_secret:
            raise VidpipeError(f"{what} {p}: holds no secret key (give the .key_secret file, not the public .key)")
        return public, None
    return public, _check(secret, what, p, "secret-key")


def check_allowed_clients(folder: Path) -> int:
    """Every ``*.key`` in the allowed-clients folder is a public key; returns how many."""
    if not folder.is_dir():
        raise VidpipeError(f"CURVE allowed clients {folder}: not a folder of client public keys (*.key)")
    keys = sorted(folder.glob("*.key"))
    for key in keys:
        load_key(key, "CURVE allowed client key")
    return len(keys)


def client_keys(client_secret: str | Path | None, server_public: str | Path | None) -> tuple[bytes, bytes, bytes]:
    """(client public, client secret, server public) for a CURVE client, each file checked."""
    if not (client_secret and server_public):
        raise VidpipeError("CURVE needs both the client secret key and the server public key")
    public, secret = load_key(client_secret, "CURVE client secret key", need_secret=True)
    server_key, _ = load_key(server_public, "CURVE server public key")
    assert secret is not None  # need_secret
    return public, secret, server_key
