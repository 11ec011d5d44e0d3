"""Links that play a caller's own recording back to them: signed, for one call, for 15 minutes.

A link names the file, the call and when it expires, with an HMAC of the three under the
node's signing key, so it cannot be guessed, reused for another call's recording, or kept.
The key is ``IVR_SECRET_KEY``; a single node without it keeps a random one in its storage
folder (made on first use, 0600); several nodes (PostgreSQL) must share one, so ``ivr serve``
refuses to start with Twilio configured and no key (``check_signing_key``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import quote

from ivr.settings import Settings

LINK_TTL_S = 15 * 60
KEY_FILE = "secret_key"
_keys: dict[Path, bytes] = {}
_keys_guard = threading.Lock()


class SigningKeyMissing(Exception):
    """Twilio is configured on several nodes and they share no signing key."""


def check_signing_key(settings: Settings) -> None:
    """At start: several nodes (a PostgreSQL database) behind Twilio must share a key."""
    shared = settings.db_url.startswith("postgresql")
    if settings.twilio_auth_token and shared and not settings.secret_key:
        raise SigningKeyMissing(
            "IVR_SECRET_KEY must be set when Twilio is configured on a shared (PostgreSQL) "
            "database: every node must sign callers' recording links with the same key"
        )
    signing_key(settings)  # a single node makes its own now, not on a caller's turn


def signing_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.storage_dir / KEY_FILE
    with _keys_guard:
        if path not in _keys:
            _keys[path] = _stored_key(path)
        return _keys[path]


def _stored_key(path: Path) -> bytes:
    """The key kept in storage, created (0600) if missing; a second process reads the first's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process is writing it this instant
            text = path.read_text(encoding="ascii").strip()
            if text:
                return text.encode()
            time.sleep(0.01)
        raise
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text(encoding="ascii").strip().encode()


def _mac(key: bytes, name: str, call: str, expires: int) -> str:
    message = f"{name}\n{call}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def link(base: str, name: str, call: str, settings: Settings, now: float | None = None) -> str:
    """The URL of recording ``name`` for call ``call``, good for ``LINK_TTL_S``."""
    expires = int((time.time() if now is None else now) + LINK_TTL_S)
    mac = _mac(signing_key(settings), name, call, expires)
    return f"{base}/twilio/recording/{quote(name)}?call={quote(call)}&expires={expires}&token={mac}"


def valid(name: str, call: str, expires: str, token: str, settings: Settings) -> bool:
    """Whether a link's token is right for its file and call and it has not expired."""
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
        return False  # "²" is a digit to isdigit, not to int
    if int(expires) < time.time():
        return False
    expected = _mac(signing_key(settings), name, call, int(expires))
    return hmac.compare_digest(token.encode(), expected.encode())
