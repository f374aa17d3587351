"""HTTP basic authentication of requests to the exporter's own endpoint, against the bcrypt hashes
of ``basic_auth_users`` in ``--web.config.file``.

Kept apart from reading that file (web_config) because it runs on every request, for the life of
the process, and has its own concerns: bcrypt's cost, timing, and what may be cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping

import bcrypt

__all__ = ["BasicAuth", "parse_basic_authorization"]

_BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt only ever reads this many; htpasswd and Go truncate the same way


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes.

    bcrypt is slow on purpose (~70 ms at cost 10), too slow to pay on every scrape: a successful check is
    remembered as an HMAC of (user, password, hash) under a key made at start, so the cache never holds
    anything a password can be recovered from, and is compared in constant time. Failures are never
    cached, so guessing always costs a bcrypt run; runs are serialised so a flood of wrong guesses uses
    one core at most. An unknown user is checked against a dummy hash of the same cost, so the answer
    takes as long as for a known user.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._bcrypt_lock = threading.Lock()
        self._dummy_hash: bytes | None = None  # made on first use: a high cost would slow the start

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check_header(self, authorization: str | None) -> bool:
        credentials = parse_basic_authorization(authorization)
        return credentials is not None and self.verify(*credentials)

    def verify(self, user: str, password: str) -> bool:
        hashed = self._users.get(user)
        secret = password.encode("utf-8")[:_BCRYPT_MAX_PASSWORD_BYTES]
        digest = self._digest(user, secret, hashed or b"")
        cached = self._verified.get(user)
        if hashed is not None and cached is not None and hmac.compare_digest(cached, digest):
            return True
        with self._bcrypt_lock:
            try:
                matches = bcrypt.checkpw(secret, hashed or self._dummy())
            except ValueError:  # a hash bcrypt cannot read; the loader should have refused it
                matches = False
        if matches and hashed is not None:
            self._verified[user] = digest
            return True
        return False

    def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            cost = max((int(h[4:6]) for h in self._users.values()), default=10)
            self._dummy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
        return self._dummy_hash

    def _digest(self, user: str, secret: bytes, hashed: bytes) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (user.encode("utf-8"), secret, hashed):  # length-prefixed: no two inputs share an encoding
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()


def parse_basic_authorization(value: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> (user, password), or None for anything else."""
    if not value:
        return None
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
