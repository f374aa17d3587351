"""The real pypsrp client against the simulated estate over loopback HTTP: every remoting path.

Each test runs a real job (JobRunner: deadline thread, collector, snapshot store) or a real
RemoteSession, and checks the outcome a user sees: samples, `up`, and the error kind.
"""

from __future__ import annotations

import io
import logging
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors import registry
from collectors.cms_replication import CmsReplicationCollector
from collectors.contract import CollectError, Deadline, ErrorKind, Field, Shape
from collectors.sources.remoting import EndpointSpec, SessionPool
from exporter import logsetup
from exporter.app import Exporter
from exporter.config import load_config
from exporter.scheduler import JobRunner
from exporter.state import SnapshotStore
from tests.conftest import (
    SIM_PASSWORD,
    SIM_USERNAME,
    estate_config,
    free_port,
    write_config,
)

FE01 = "fe01.contoso.com"
FE02 = "fe02.contoso.com"


def make_runner(sim, tmp_path, target="fe01", timeout="5s", interval="60s", store=None, sessions=None, **kw):
    config = load_config(write_config(tmp_path, estate_config(sim, interval=interval, timeout=timeout, **kw)),
                         registry.by_name())
    job = next(j for j in config.jobs(registry.by_name()) if j.target.name == target)
    store = store or SnapshotStore()
    runner = JobRunner(CmsReplicationCollector(), job, store, sessions or SessionPool())
    return runner, store


def job_status(store, target="fe01"):
    return next(j for j in store.jobs() if j.target == target)


def values(store, metric, target="fe01"):
    job = job_status(store, target)
    return {s.label_values: s.value for s in job.samples if s.spec.name == metric}


def test_healthy_run_exports_every_replica(sim, tmp_path, password_env):
    runner, store = make_runner(sim, tmp_path)
    runner()
    job = job_status(store)
    assert job.up, job.last_error
    up_to_date = values(store, "lync_owa_cms_replica_up_to_date")
    assert len(up_to_date) >= 2 and set(up_to_date.values()) == {1.0}
    reports = values(store, "lync_owa_cms_replica_last_status_report_timestamp_seconds")
    assert reports and all(abs(time.time() - ts) < 3600 for ts in reports.values())
    info = values(store, "lync_owa_cms_replica_info")
    assert all(version != "unknown" for (_, version) in info)


def test_wrong_password_is_kind_auth(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("WRONG_PASSWORD", "not-the-password")
    runner, store = make_runner(sim, tmp_path, password_env="WRONG_PASSWORD")
    runner()
    job = job_status(store)
    assert not job.up and job.last_error_kind == "auth" and job.error_count("auth") == 1


def test_connection_refused_is_kind_unreachable(sim, tmp_path, password_env):
    sim.set_fault(FE01, "refuse")
    runner, store = make_runner(sim, tmp_path)
    runner()
    assert job_status(store).last_error_kind == "unreachable"
    sim.clear_faults(FE01)
    runner()
    assert job_status(store).up  # the same port serves again once the fault is cleared


def test_http_500_is_kind_unreachable(sim, tmp_path, password_env):
    sim.set_fault(FE01, "http_500")
    runner, store = make_runner(sim, tmp_path)
    runner()
    assert job_status(store).last_error_kind in ("unreachable", "command")


@pytest.mark.parametrize("fault", ["malformed", "malformed_soap"])
def test_malformed_answer_is_kind_shape(sim, tmp_path, password_env, fault):
    sim.set_fault(FE01, fault)
    runner, store = make_runner(sim, tmp_path)
    runner()
    assert job_status(store).last_error_kind == "shape", job_status(store).last_error


def test_non_terminating_error_is_kind_command(sim, tmp_path, password_env):
    sim.set_fault(FE01, "non_terminating_error", cmdlet="Get-CsManagementStoreReplicationStatus")
    runner, store = make_runner(sim, tmp_path)
    runner()
    job = job_status(store)
    assert job.last_error_kind == "command" and "non-terminating" in job.last_error


def test_terminating_error_is_kind_command(sim, tmp_path, password_env):
    sim.set_fault(FE01, "terminating_error", cmdlet="Get-CsManagementStoreReplicationStatus")
    runner, store = make_runner(sim, tmp_path)
    runner()
    job = job_status(store)
    assert job.last_error_kind == "command" and "terminating" in job.last_error


def test_runspace_pool_is_reused_between_runs(sim, tmp_path, password_env):
    sessions = SessionPool()
    runner, store = make_runner(sim, tmp_path, sessions=sessions)
    before = sim.stats()[FE01]["shells_created"]
    runner()
    runner()
    runner()
    assert job_status(store).runs == 3 and job_status(store).up
    # One pool per endpoint the job uses (the CMS over /OcsPowershell, the event log over WinRM),
    # each opened once for three runs.
    assert sim.stats()[FE01]["shells_created"] - before == 2
    assert [s.pools_opened for s in sessions.sessions()] == [1, 1]


def test_pool_dropped_after_a_failure_is_reopened(sim, tmp_path, password_env):
    sessions = SessionPool()
    runner, store = make_runner(sim, tmp_path, sessions=sessions)
    runner()
    sim.set_fault(FE01, "http_500")
    runner()
    sim.clear_faults(FE01)
    runner()
    assert job_status(store).up
    assert sessions.sessions()[0].pools_opened == 2


def test_live_scenario_switch_changes_the_next_run(sim, tmp_path, password_env):
    runner, store = make_runner(sim, tmp_path)
    runner()
    assert set(values(store, "lync_owa_cms_replica_up_to_date").values()) == {1.0}
    sim.set_scenario("cms-replica-stale")
    runner()
    stale = {labels[0]: v for labels, v in values(store, "lync_owa_cms_replica_up_to_date").items()}
    assert stale["edge01.contoso.com"] == 0.0
    assert stale["fe01.contoso.com"] == 1.0
    report = {labels[0]: v for labels, v in values(store, "lync_owa_cms_replica_last_status_report_timestamp_seconds").items()}
    assert time.time() - report["edge01.contoso.com"] > 3600


def test_session_deadline_ends_a_hung_call(sim, password_env):
    sim.set_fault(FE01, "hang")
    info = sim.hosts()[FE01]
    session = SessionPool().get(EndpointSpec(info.windows_url, "Microsoft.PowerShell", SIM_USERNAME, SIM_PASSWORD,
                                             auth="basic", encryption="never"))
    shape = Shape("Get-CsManagementStoreReplicationStatus", (Field("ReplicaFqdn", "str"),))
    with pytest.raises(CollectError) as err:
        session.run("Get-CsManagementStoreReplicationStatus", None, shape, Deadline(1.5))
    assert err.value.kind == ErrorKind.TIMEOUT


def test_no_matching_events_is_an_empty_answer_when_accepted(sim, password_env):
    info = sim.hosts()["ex01.contoso.com"]
    session = SessionPool().get(EndpointSpec(info.windows_url, "Microsoft.PowerShell", SIM_USERNAME, SIM_PASSWORD,
                                             auth="basic", encryption="never"))
    shape = Shape("Get-WinEvent", (Field("Id", "int"), Field("TimeCreated", "datetime")))
    params = {"FilterHashtable": {"LogName": "Application", "ProviderName": "MSExchange OWA", "Id": 99999}}
    answer = session.run("Get-WinEvent", params, shape, Deadline(10), accept_error_ids=["NoMatchingEventsFound"])
    assert answer.objects == [] and answer.error_ids() == {"NoMatchingEventsFound"}
    with pytest.raises(CollectError) as err:
        session.run("Get-WinEvent", params, shape, Deadline(10))
    assert err.value.kind == ErrorKind.COMMAND and "NoMatchingEventsFound" in str(err.value)


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        return {f.name: f for f in text_string_to_metric_families(response.read().decode())}


def sample_value(families, name, **labels):
    family = families[name]
    for sample in family.samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()) and sample.name in (name, name + "_total"):
            return sample.value
    return None


def test_hung_host_times_out_alone_while_others_update(sim, tmp_path, password_env):
    """fe01 hangs: its job ends by its deadline as a timeout; fe02's keeps succeeding; scrapes answer."""
    sim.set_fault(FE01, "hang")
    config = load_config(
        write_config(tmp_path, estate_config(sim, interval="1s", timeout="800ms", hosts={FE01, FE02})),
        registry.by_name(),
    )
    exporter = Exporter(config, f"127.0.0.1:{free_port()}")
    exporter.start()
    try:
        fe02_successes = set()
        fe01_timeouts = 0.0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            families = scrape(exporter.url)  # urlopen's 5 s timeout: a scrape never waits on a server
            fe02_successes.add(sample_value(families, "lync_owa_collector_last_success_timestamp_seconds",
                                            collector="cms_replication", target="fe02"))
            fe01_timeouts = sample_value(families, "lync_owa_collector_errors", collector="cms_replication",
                                         target="fe01", kind="timeout")
            if fe01_timeouts >= 2 and len(fe02_successes - {None}) >= 3:
                break
            time.sleep(0.3)
        assert fe01_timeouts >= 2
        assert len(fe02_successes - {None}) >= 3, "fe02 stopped updating while fe01 hung"
        assert sample_value(families, "lync_owa_collector_up", collector="cms_replication", target="fe01") == 0
        assert sample_value(families, "lync_owa_collector_up", collector="cms_replication", target="fe02") == 1
    finally:
        sim.clear_faults()
        exporter.stop()


def test_password_never_reaches_a_log_line(sim, tmp_path, password_env, monkeypatch):
    """Debug logging of every library, over success, auth failure, refusal, timeout and errors."""
    stream = io.StringIO()
    logsetup.configure("debug", "logfmt", stream=stream)
    for name in logsetup.NOISY_LIBRARIES:  # even the libraries that log whole SOAP messages
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        runner, store = make_runner(sim, tmp_path, timeout="1500ms", interval="10s")
        runner()
        for fault in ("http_401", "refuse", "hang", "terminating_error", "malformed"):
            sim.set_fault(FE01, fault)
            runner()
            sim.clear_faults(FE01)
        monkeypatch.setenv("OTHER_PASSWORD", SIM_PASSWORD + "-wrong")
        wrong, _ = make_runner(sim, tmp_path, password_env="OTHER_PASSWORD")
        wrong()
        texts = [stream.getvalue()] + [j.last_error for j in store.jobs()]
    finally:
        logsetup.configure("info", "logfmt")
    combined = "\n".join(texts)
    assert "Sending message" in combined or "WSMan" in combined  # the capture really saw debug output
    assert SIM_PASSWORD not in combined
