"""Shared test helpers: free ports, the simulated estate, and configurations pointing at it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
import yaml

from tests import loopback_guard

# No test resolves a name or connects beyond loopback (tests/loopback_guard.py): installed at import,
# before any test module opens a socket.
loopback_guard.install()

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_EVTX = PROJECT_ROOT.parent / "shared" / "evtx"
SHARED_CAPTURES = PROJECT_ROOT.parent / "shared" / "captures"

SIM_USERNAME = "sim-monitor"
# Distinctive, so a test can search every log line and error for it.
SIM_PASSWORD = "Pw-9c1f3e7a-never-log-me"
PASSWORD_ENV = "LYNC_OWA_TEST_PASSWORD"


def unavailable(problem: str) -> NoReturn:
    """A tool or file a test needs is missing: a failure in CI (which must have everything), else a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{problem}; CI is set, so this is a failure", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The real Windows event logs of the sibling 'shared/evtx' folder."""
    if not SHARED_EVTX.is_dir() or not any(SHARED_EVTX.glob("*.evtx")):
        unavailable(f"the real .evtx files are not at {SHARED_EVTX} (a sibling 'shared/evtx' of the project)")
    return SHARED_EVTX


@pytest.fixture(scope="session")
def captures() -> Path:
    """The Exchange captures of the sibling 'shared/captures' folder (tests/captures.py reads them)."""
    if not (SHARED_CAPTURES / "exchange").is_dir():
        unavailable(f"the real captures are not at {SHARED_CAPTURES} (a sibling 'shared/captures' of the project)")
    return SHARED_CAPTURES / "exchange"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ClientAuth:
    """How configurations made by ``estate_config`` authenticate to a simulator (see tests/kdc.py).

    ``exchange`` is the auth of targets with an Exchange role, ``other`` of the rest: ``basic`` (the
    simulator's user) or ``kerberos``/``negotiate``/``ntlm`` as ``principal`` (the test realm's
    monitoring user, whose password is SIM_PASSWORD too), from ``keytab`` when given. Those targets'
    endpoints name the host as the SPN's (the URLs say 127.0.0.1) and use message encryption.
    A fixture attaches one to its simulator as ``sim.client_auth``; without it, everything is Basic.
    """

    exchange: str = "basic"
    other: str = "basic"
    principal: str | None = None
    keytab: str | None = None
    ticket_cache: str | None = None  # with keytab: where the exporter keeps tickets; alone: an existing cache
    spn_hostname: dict[str, str] | None = None  # host -> SPN host name, when not the host's own name

    def for_roles(self, roles) -> str:
        return self.exchange if any(r.startswith("exchange_") for r in roles) else self.other


def estate_config(sim, *, interval="60s", timeout="20s", hosts=None, password_env=PASSWORD_ENV,
                  ca_file=None, tls_verify=True, collectors=("cms_replication",),
                  lync_pool_fqdn="pool01.contoso.com", windows_configuration=None,
                  auth: ClientAuth | None = None, hybrid: str | bool | None = None) -> dict:
    """A configuration document for (some of) the simulator's hosts.

    ``collectors`` is a sequence of names, or a mapping of name -> extra settings for that collector.
    ``auth`` (default: the simulator's ``client_auth``, else Basic everywhere) chooses each target's
    credential.
    """
    auth = auth or getattr(sim, "client_auth", None) or ClientAuth()
    credentials = {}
    targets = []
    for name, info in sim.hosts().items():
        if hosts is not None and name not in hosts:
            continue
        mode = auth.for_roles(info.roles)
        credential = "sim" if mode == "basic" else f"sim-{mode}"
        if mode == "basic":
            credentials[credential] = {"username": SIM_USERNAME, "password_env": password_env, "auth": "basic"}
        elif auth.keytab or auth.ticket_cache:
            credentials[credential] = {"username": auth.principal, "auth": mode}
            if auth.keytab:
                credentials[credential]["keytab_file"] = auth.keytab
            if auth.ticket_cache:
                credentials[credential]["ticket_cache"] = auth.ticket_cache
        else:
            credentials[credential] = {"username": auth.principal, "password_env": password_env, "auth": mode}
        endpoint = {"encryption": "never" if mode == "basic" else "auto", "tls_verify": tls_verify}
        if mode != "basic":
            endpoint["spn_hostname"] = (auth.spn_hostname or {}).get(name, name)
        endpoints = {"windows": {"url": info.windows_url, **endpoint}}
        if ca_file:
            endpoints["windows"]["ca_file"] = ca_file
        if windows_configuration:
            endpoints["windows"]["configuration"] = windows_configuration
        if info.exchange_url:
            endpoints["exchange"] = {"url": info.exchange_url, **endpoint}
            if ca_file:
                endpoints["exchange"]["ca_file"] = ca_file
        if getattr(info, "lync_url", None):
            endpoints["lync"] = {"url": info.lync_url, **endpoint}
            if ca_file:
                endpoints["lync"]["ca_file"] = ca_file
        targets.append({"name": name.split(".")[0], "host": name, "roles": list(info.roles),
                        "credential": credential, "endpoints": endpoints})
    if isinstance(collectors, dict):
        collector_settings = {name: {"interval": interval, "timeout": timeout, **(extra or {})}
                              for name, extra in collectors.items()}
    else:
        collector_settings = {name: {"interval": interval, "timeout": timeout} for name in collectors}
    return {
        "global": {"lync_pool_fqdn": lync_pool_fqdn, **({} if hybrid is None else {"hybrid": hybrid})},
        "credentials": credentials or {"sim": {"username": SIM_USERNAME, "password_env": password_env,
                                               "auth": "basic"}},
        "collectors": collector_settings,
        "targets": targets,
    }


def write_config(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def password_env(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, SIM_PASSWORD)
    return PASSWORD_ENV


@pytest.fixture(scope="session")
def kdc(tmp_path_factory):
    """A throw-away MIT Kerberos realm (tests/kdc.py) with HTTP/<host> for every simulated host.

    Its settings (KRB5_CONFIG, KRB5_KTNAME, NTLM_USER_FILE...) are in this process's environment for
    the session, as the exporter and the simulator's acceptors read them from there.
    """
    from tests.kdc import TestKDC, require_gssapi, require_kerberos_tools

    require_kerberos_tools()
    require_gssapi()
    from simulator.scenario import load_scenario

    hosts = list(load_scenario("healthy").host_names())
    realm = TestKDC(tmp_path_factory.mktemp("kdc"), hosts).start()
    saved = {name: os.environ.get(name) for name in realm.env}
    os.environ.update(realm.env)
    yield realm
    realm.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end and container tests are slow by nature: `scripts/test --fast` leaves them out."""
    for item in items:
        if item.get_closest_marker("e2e") or item.get_closest_marker("container"):
            item.add_marker(pytest.mark.slow)
