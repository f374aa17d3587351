"""Keep the test session on loopback: no name lookup and no connection may leave this machine.

The simulated estate's host names (ex01.contoso.com...) are never resolved: targets reach the
simulator through URLs on 127.0.0.1 (``Simulator.hosts()``), and the TLS probe through
``connect_addresses`` naming the simulator's loopback listeners. Anything else asking the system
resolver for a name, or connecting to an address off this machine, is a test (or a default) that
would send traffic onto the network: the guard refuses it with an error naming what was asked, and
records it in :data:`REFUSED`.

Installed for the whole session by tests/conftest.py; it covers this process (the exporter, the
collectors and the in-process simulator), not child processes, nor lookups made inside C libraries
(krb5 reads its KDC address from the test realm's krb5.conf, which names 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from typing import Any

# Names that resolve to loopback without a DNS query (RFC 6761: localhost and *.localhost).
LOOPBACK_NAMES = ("localhost",)

REFUSED: list[str] = []
_lock = threading.Lock()
_originals: dict[str, Any] = {}


class TrafficBeyondLoopback(ConnectionRefusedError):
    """A connection to an address off this machine, refused before any packet left."""


def is_loopback_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # 0.0.0.0 / :: as a destination reach this machine (Linux connects them to loopback).
    return address.is_loopback or address.is_unspecified


def is_loopback_name(host: str | bytes | None) -> bool:
    if host is None:
        return True  # a passive lookup (bind to any address)
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    name = name.rstrip(".").lower()
    if name == "" or is_loopback_address(name):
        return True
    return name in LOOPBACK_NAMES or name.endswith(".localhost")


def _refuse(what: str) -> str:
    message = f"test guard: {what} would leave this machine (tests, benchmarks and the demo stay on loopback)"
    with _lock:
        REFUSED.append(what)
    return message


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not is_loopback_name(host):
        raise socket.gaierror(socket.EAI_NONAME, _refuse(f"resolving {host!r}"))
    return _originals["getaddrinfo"](host, *args, **kwargs)


def _gethostbyname(host: str) -> str:
    if not is_loopback_name(host):
        raise socket.gaierror(socket.EAI_NONAME, _refuse(f"resolving {host!r}"))
    return _originals["gethostbyname"](host)


def _gethostbyname_ex(host: str) -> Any:
    if not is_loopback_name(host):
        raise socket.gaierror(socket.EAI_NONAME, _refuse(f"resolving {host!r}"))
    return _originals["gethostbyname_ex"](host)


def _gethostbyaddr(host: str) -> Any:
    if not is_loopback_name(host):
        raise socket.herror(1, _refuse(f"reverse lookup of {host!r}"))
    return _originals["gethostbyaddr"](host)


def _check_destination(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host = str(address[0])
        if not is_loopback_address(host):
            raise TrafficBeyondLoopback(_refuse(f"connecting to {host}:{address[1] if len(address) > 1 else '?'}"))


def _connect(self: socket.socket, address: Any) -> None:
    _check_destination(self, address)
    return _originals["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check_destination(self, address)
    return _originals["connect_ex"](self, address)


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    address = args[-1] if args else None
    if address is not None:
        _check_destination(self, address)
    return _originals["sendto"](self, data, *args)


def install() -> None:
    """Patch the socket module for this process; idempotent."""
    with _lock:
        if _originals:
            return
        for name, replacement in (("getaddrinfo", _getaddrinfo), ("gethostbyname", _gethostbyname),
                                  ("gethostbyname_ex", _gethostbyname_ex), ("gethostbyaddr", _gethostbyaddr)):
            _originals[name] = getattr(socket, name)
            setattr(socket, name, replacement)
        for name, replacement in (("connect", _connect), ("connect_ex", _connect_ex), ("sendto", _sendto)):
            _originals[name] = getattr(socket.socket, name)
            setattr(socket.socket, name, replacement)


def installed() -> bool:
    return bool(_originals)


def guarded_environment(report: "os.PathLike[str] | str", project_root: "os.PathLike[str] | str") -> dict[str, str]:
    """The environment for a child Python process (the demo) that installs this guard at start-up and
    writes what it refused to `report` when it exits (tests/loopback_site/sitecustomize.py)."""
    site = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loopback_site")
    environment = dict(os.environ)
    path = [site, os.fspath(project_root)] + ([environment["PYTHONPATH"]] if environment.get("PYTHONPATH") else [])
    environment["PYTHONPATH"] = os.pathsep.join(path)
    environment["LOOPBACK_GUARD_REPORT"] = os.fspath(report)
    return environment
