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
import os
import secrets
import threading
from collections.abc import Mapping

import bcrypt

from exporter.fair_queue import FairLimiter

__all__ = ["BasicAuth", "parse_basic_authorization"]

_BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt only ever reads this many; htpasswd and Go truncate the same way


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes.

    bcrypt is slow on purpose (~70 ms at cost 10), too slow to pay on every scrape: a successful check is
    remembered as an HMAC of (user, password, hash) under a key made at start, so the cache never holds
    anything a password can be recovered from, and is compared in constant time. Failures are never
    cached, so guessing always costs a bcrypt run. At most ``bcrypt_slots`` runs at a time (half the
    cores: a flood of wrong guesses leaves the rest for scrapes and collectors), and waiting checks take
    their turn round robin by client address (``FairLimiter``), so a flood from one address delays
    another client's login by about one run per flooding address, not by the whole flood. An unknown
    user is checked against a dummy hash of the same cost, so the answer takes as long as for a known
    user.
    """

    def __init__(self, users: Mapping[str, bytes], bcrypt_slots: int | None = None) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._bcrypt_slots = FairLimiter(bcrypt_slots or max(1, (os.cpu_count() or 2) // 2))
        self._dummy_lock = threading.Lock()
        self._dummy_hash: bytes | None = None  # made on first use: a high cost would slow the start

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check_header(self, authorization: str | None, client: str = "") -> bool:
        """Whether the header carries a known user and its password; ``client`` (its address) decides
        its place in the queue for bcrypt."""
        credentials = parse_basic_authorization(authorization)
        return credentials is not None and self.verify(*credentials, client=client)

    def verify(self, user: str, password: str, client: str = "") -> bool:
        hashed = self._users.get(user)
        secret = password.encode("utf-8")[:_BCRYPT_MAX_PASSWORD_BYTES]
        digest = self._digest(user, secret, hashed or b"")
        cached = self._verified.get(user)
        if hashed is not None and cached is not None and hmac.compare_digest(cached, digest):
            return True
        dummy = self._dummy() if hashed is None else b""
        with self._bcrypt_slots.slot(client):
            try:
                matches = bcrypt.checkpw(secret, hashed or dummy)
            except ValueError:  # a hash bcrypt cannot read; the loader should have refused it
                matches = False
        if matches and hashed is not None:
            self._verified[user] = digest
            return True
        return False

    def _dummy(self) -> bytes:
        with self._dummy_lock:  # made once, even when the first unknown users come in together
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
