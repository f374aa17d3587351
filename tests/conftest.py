"""Shared test helpers: free ports, the simulated estate, and configurations pointing at it."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import NoReturn

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_EVTX = PROJECT_ROOT.parent / "shared" / "evtx"

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def estate_config(sim, *, interval="60s", timeout="20s", hosts=None, password_env=PASSWORD_ENV,
                  ca_file=None, tls_verify=True, collectors=("cms_replication",),
                  lync_pool_fqdn="pool01.contoso.com", windows_configuration=None) -> dict:
    """A configuration document for (some of) the simulator's hosts.

    ``collectors`` is a sequence of names, or a mapping of name -> extra settings for that collector.
    """
    targets = []
    for name, info in sim.hosts().items():
        if hosts is not None and name not in hosts:
            continue
        endpoints = {"windows": {"url": info.windows_url, "encryption": "never", "tls_verify": tls_verify}}
        if ca_file:
            endpoints["windows"]["ca_file"] = ca_file
        if windows_configuration:
            endpoints["windows"]["configuration"] = windows_configuration
        if info.exchange_url:
            endpoints["exchange"] = {"url": info.exchange_url, "encryption": "never", "tls_verify": tls_verify}
        targets.append({"name": name.split(".")[0], "host": name, "roles": list(info.roles),
                        "credential": "sim", "endpoints": endpoints})
    if isinstance(collectors, dict):
        collector_settings = {name: {"interval": interval, "timeout": timeout, **(extra or {})}
                              for name, extra in collectors.items()}
    else:
        collector_settings = {name: {"interval": interval, "timeout": timeout} for name in collectors}
    return {
        "global": {"lync_pool_fqdn": lync_pool_fqdn},
        "credentials": {"sim": {"username": SIM_USERNAME, "password_env": password_env, "auth": "basic"}},
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end and container tests are slow by nature: `scripts/test --fast` leaves them out."""
    for item in items:
        if item.get_closest_marker("e2e") or item.get_closest_marker("container"):
            item.add_marker(pytest.mark.slow)
