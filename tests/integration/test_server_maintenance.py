"""Maintenance awareness through the real path: JobRunner, pypsrp over loopback, the simulated estate.

Exchange servers answer Get-ServerComponentState (the Exchange endpoint, Kerberos as in production),
front ends Get-CsWindowsService (their Windows endpoint). The shipped maintenance scenarios put exactly
one server in maintenance; the real captures of healthy servers read as in service.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collectors.server_maintenance import ServerMaintenanceCollector
from tests.integration.collector_harness import Job

IN_MAINTENANCE = "lync_owa_server_in_maintenance"
STATE = "lync_owa_server_maintenance_state"
SERVERS = ("ex01", "ex02", "fe01", "fe02")
# What the defaults read on a server in service: (kind, component, state) -> 0.
EXCHANGE_IN_SERVICE = {("exchange_component", "HubTransport", "Active"): 0.0,
                       ("exchange_component", "OwaProxy", "Active"): 0.0,
                       ("exchange_component", "ServerWideOffline", "Active"): 0.0}
FRONT_END_IN_SERVICE = {("lync_service", "RTCSRV", "Running"): 0.0}


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


@pytest.fixture
def jobs(sim, tmp_path):
    made: list[Job] = []

    def make(target: str, settings: dict | None = None) -> Job:
        job = Job(sim, tmp_path, ServerMaintenanceCollector(), target, settings)
        made.append(job)
        return job

    yield make
    for job in made:
        job.close()


def exported(job: Job) -> tuple[float, dict[tuple[str, ...], float]]:
    """(in maintenance, (kind, component, state) -> 1 or 0) of one run that must succeed."""
    status = job.run()
    assert status.up, status.last_error
    (value,) = job.values(IN_MAINTENANCE).values()
    return value, job.values(STATE)


def overlay(sim, tmp_path: Path, name: str, hosts: dict) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"base": "healthy", "description": name, "hosts": hosts}))
    sim.set_scenario(path)


def test_the_healthy_estate_is_in_service(jobs):
    for target in ("ex01", "ex02"):
        assert exported(jobs(target)) == (0.0, EXCHANGE_IN_SERVICE), target
    for target in ("fe01", "fe02"):
        assert exported(jobs(target)) == (0.0, FRONT_END_IN_SERVICE), target


def test_the_job_runs_on_exchange_servers_and_front_ends_only(sim, tmp_path):
    with pytest.raises(StopIteration):  # no job for the Edge: it has no component states nor front-end pool role
        Job(sim, tmp_path, ServerMaintenanceCollector(), "edge01")


def test_exchange_maintenance_puts_ex01_alone_in_maintenance(sim, jobs):
    sim.set_scenario("exchange-maintenance")
    assert exported(jobs("ex01")) == (1.0, {("exchange_component", "HubTransport", "Draining"): 1.0,
                                            ("exchange_component", "OwaProxy", "Active"): 0.0,
                                            ("exchange_component", "ServerWideOffline", "Inactive"): 1.0})
    assert exported(jobs("ex02")) == (0.0, EXCHANGE_IN_SERVICE)
    for target in ("fe01", "fe02"):
        assert exported(jobs(target)) == (0.0, FRONT_END_IN_SERVICE), target
    sim.set_scenario("healthy")
    assert exported(jobs("ex01")) == (0.0, EXCHANGE_IN_SERVICE)


def test_frontend_drained_puts_fe01_alone_in_maintenance(sim, jobs):
    sim.set_scenario("frontend-drained")
    assert exported(jobs("fe01")) == (1.0, {("lync_service", "RTCSRV", "Paused"): 1.0})
    assert exported(jobs("fe02")) == (0.0, FRONT_END_IN_SERVICE)
    for target in ("ex01", "ex02"):
        assert exported(jobs(target)) == (0.0, EXCHANGE_IN_SERVICE), target


def test_a_stopped_front_end_service_is_maintenance_too(sim, tmp_path, jobs):
    overlay(sim, tmp_path, "fe02-failed-over", {"fe02.contoso.com": {"lync": {"windows_services": {
        "RTCSRV": {"status": "Stopped"}, "REPLICA": {"status": "Stopped"}}}}})
    # Only the configured service counts: REPLICA stopped alone would not take fe02 out of the pool.
    assert exported(jobs("fe02")) == (1.0, {("lync_service", "RTCSRV", "Stopped"): 1.0})
    # Reading REPLICA as well, and counting only Paused: fe02 reads as in service, both seen stopped.
    assert exported(jobs("fe02", {"lync_services": ["RTCSRV", "REPLICA"], "lync_statuses": ["Paused"]})) == (
        0.0, {("lync_service", "REPLICA", "Stopped"): 0.0, ("lync_service", "RTCSRV", "Stopped"): 0.0})
    # A service the front end does not have reads as missing, never as maintenance.
    assert exported(jobs("fe02", {"lync_services": ["RTCXYZ"]})) == (0.0, {("lync_service", "RTCXYZ", "missing"): 0.0})


def test_only_the_configured_components_and_states_count(sim, tmp_path, jobs):
    overlay(sim, tmp_path, "ex02-owa-proxy-off", {"ex02.contoso.com": {"exchange": {"component_states": {
        "OwaProxy": {"state": "Inactive", "requester": "Maintenance"},
        "ImapProxy": {"state": "Inactive", "requester": "Maintenance"},
        "HubTransport": {"state": "Inactive", "requester": "Maintenance"}}}}})
    # HubTransport Inactive is not Draining, ImapProxy is not read: OwaProxy alone counts.
    assert exported(jobs("ex02")) == (1.0, {("exchange_component", "HubTransport", "Inactive"): 0.0,
                                            ("exchange_component", "OwaProxy", "Inactive"): 1.0,
                                            ("exchange_component", "ServerWideOffline", "Active"): 0.0})
    # An operator who counts ServerWideOffline alone: ex02 is in service.
    assert exported(jobs("ex02", {"exchange_components": {"ServerWideOffline": ["Inactive"]}})) == (
        0.0, {("exchange_component", "ServerWideOffline", "Active"): 0.0})
    # Component names as Get-ServerComponentState spells them, compared without regard to case; a
    # component the server does not list reads as missing.
    assert exported(jobs("ex02", {"exchange_components": {"hubtransport": ["Inactive"], "NoSuchThing": ["Inactive"]}})) == (
        1.0, {("exchange_component", "hubtransport", "Inactive"): 1.0,
              ("exchange_component", "NoSuchThing", "missing"): 0.0})


@pytest.mark.parametrize("version", ["E15", "E16"])
def test_real_healthy_servers_read_as_in_service(sim, tmp_path, jobs, captures, version):
    """The captured servers have ForwardSyncDaemon and ProvisioningRps Inactive, as every healthy one."""
    overlay(sim, tmp_path, f"replay-{version}", {"ex01.contoso.com": {"replay": {
        "Get-ServerComponentState": str(captures / version / "GetServerComponentState.xml")}}})
    assert exported(jobs("ex01")) == (0.0, EXCHANGE_IN_SERVICE)
    assert exported(jobs("ex01", {"exchange_components": {"ForwardSyncDaemon": ["Inactive"]}})) == (
        1.0, {("exchange_component", "ForwardSyncDaemon", "Inactive"): 1.0})


def test_exchange_names_the_server_it_is_asked_about(sim, tmp_path, jobs):
    job = jobs("ex01", {"exchange_server": "EX99"})
    status = job.run()
    assert not status.up
    assert status.last_error is not None and "EX99" in str(status.last_error)
