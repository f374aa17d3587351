"""Per-host server state: credentials, what it accepts, faults, counters and the open shells of one simulated host."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import threading
import time
from collections import Counter
from collections.abc import Mapping

from simulator.auth import BASIC_ONLY, normalise
from simulator.estate import Estate, HostView
from simulator.faults import FaultSet
from simulator.psrp_session import RunspaceShell

# WinRM's default IdleTimeout: a shell nobody uses for this long is removed (and its memory freed).
SHELL_IDLE_TIMEOUT = 7200.0


@dataclasses.dataclass
class Stats:
    shells_created: int = 0
    commands: int = 0
    signals: int = 0  # Signal requests (terminate or crtl_c) the host answered
    requests: int = 0
    connections: int = 0  # TCP connections the host accepted (a client that keeps its connections opens few)
    requests_encrypted: int = 0
    auth_failures: int = 0
    # "basic"/"kerberos"/"ntlm" and "<endpoint>_<mechanism>" -> requests served under it
    auth: Counter = dataclasses.field(default_factory=Counter)


class HostRuntime:
    """Everything one simulated host's listener needs; shared across its connection threads."""

    def __init__(self, name: str, estate: Estate, username: str, password: str, stopping: threading.Event,
                 auth: Mapping[str, tuple[str, ...]] = BASIC_ONLY, allow_unencrypted: bool = True) -> None:
        self.name = name
        self.estate = estate
        self.faults = FaultSet()
        self.stopping = stopping
        self._username = username
        self._password = password
        self._lock = threading.Lock()
        self._stats = Stats()
        self._shells: dict[str, RunspaceShell] = {}
        self.roles: list[str] = list(estate.scenario.model.hosts[name].roles)
        self._auth = dict(auth)  # the simulator's choice; a scenario's host `auth:` or set_auth() wins
        self._auth_override: dict[str, tuple[str, ...]] = {}
        # False: like WinRM's AllowUnencrypted=false, plain-HTTP requests must be message-encrypted.
        self.allow_unencrypted = allow_unencrypted

    @property
    def is_exchange(self) -> bool:
        return any(r.startswith("exchange_") for r in self.roles)

    @property
    def is_lync_frontend(self) -> bool:
        # Only front ends serve /OcsPowershell (their internal web site); an Edge has none.
        return "lync_frontend" in self.roles

    def view(self) -> HostView:
        return self.estate.view(self.name)

    def check_basic_auth(self, header: str | None) -> str | None:
        """The user name when the Authorization header carries the right credentials, else None."""
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        # Constant-time comparisons: no timing hint about either part.
        ok_user = hmac.compare_digest(user.encode(), self._username.encode())
        ok_password = hmac.compare_digest(password.encode(), self._password.encode())
        return user if ok_user and ok_password else None

    # ------------------------------------------------------------ authentication

    def accepted_schemes(self, endpoint_kind: str) -> tuple[str, ...]:
        """What this host's endpoint offers in WWW-Authenticate (see simulator.auth)."""
        with self._lock:
            if endpoint_kind in self._auth_override:
                return self._auth_override[endpoint_kind]
        host = self.estate.scenario.model.hosts.get(self.name)
        declared = getattr(getattr(host, "auth", None), endpoint_kind, None)
        if declared:
            return tuple(declared)
        return self._auth.get(endpoint_kind, ("basic",))

    def set_auth(self, offer) -> None:
        """Override what this host accepts (``None`` returns to the scenario's or simulator's choice)."""
        with self._lock:
            self._auth_override = {} if offer is None else normalise(offer, default=self._auth)

    def record_auth(self, endpoint_kind: str, mechanism: str, encrypted: bool) -> None:
        with self._lock:
            self._stats.auth[mechanism] += 1
            self._stats.auth[f"{endpoint_kind}_{mechanism}"] += 1
            if encrypted:
                self._stats.requests_encrypted += 1

    def record_auth_failure(self) -> None:
        with self._lock:
            self._stats.auth_failures += 1

    # ------------------------------------------------------------ counters

    def count_connection(self) -> None:
        with self._lock:
            self._stats.connections += 1

    def count_request(self) -> None:
        with self._lock:
            self._stats.requests += 1

    def count_command(self) -> None:
        with self._lock:
            self._stats.commands += 1

    def count_signal(self) -> None:
        with self._lock:
            self._stats.signals += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "shells_created": self._stats.shells_created,
                "shells_open": len(self._shells),
                "commands": self._stats.commands,
                "signals": self._stats.signals,
                # Pipelines the host still keeps: finished ones are forgotten once their answer is out.
                "pipelines_open": sum(shell.pipelines_open for shell in self._shells.values()),
                "requests": self._stats.requests,
                "connections": self._stats.connections,
                "requests_encrypted": self._stats.requests_encrypted,
                "auth_failures": self._stats.auth_failures,
                **{f"auth_{key}": count for key, count in sorted(self._stats.auth.items())},
            }

    # ------------------------------------------------------------ shells

    def add_shell(self, shell: RunspaceShell) -> None:
        with self._lock:
            self._expire_idle()
            self._shells[shell.shell_id.upper()] = shell
            self._stats.shells_created += 1

    def shell(self, shell_id: str) -> RunspaceShell | None:
        with self._lock:
            found = self._shells.get(shell_id.upper())
            if found is not None:
                found.last_used = time.monotonic()
            return found

    def remove_shell(self, shell_id: str) -> RunspaceShell | None:
        with self._lock:
            return self._shells.pop(shell_id.upper(), None)

    def drop_shells(self) -> None:
        with self._lock:
            self._shells.clear()

    def _expire_idle(self) -> None:
        limit = time.monotonic() - SHELL_IDLE_TIMEOUT
        for shell_id in [k for k, s in self._shells.items() if s.last_used < limit]:
            del self._shells[shell_id]
