"""Check L1 in depth: replicas, the CMS status view and the File Transfer Agent's events, through the real path."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from collectors.cms_replication import (
    CmsReplicationCollector,
    FtaEventState,
    read_cms_status,
    status_time_label,
)
from tests.integration.collector_harness import Job

FE01, EDGE01 = "fe01.contoso.com", "edge01.contoso.com"
PREFIX = "lync_owa_cms_"
# Metrics whose values are points in time: the simulator answers relative times, so they move between runs.
TIMESTAMPS = (
    f"{PREFIX}replica_last_status_report_timestamp_seconds",
    f"{PREFIX}replica_last_update_creation_timestamp_seconds",
    f"{PREFIX}status_timestamp_seconds",
    f"{PREFIX}file_transfer_agent_event_last_seen_timestamp_seconds",
)


@pytest.fixture
def job(sim, tmp_path, password_env):
    created: list[Job] = []

    def make(target: str = "fe01", **kw) -> Job:
        (tmp_path / str(len(created))).mkdir()
        new = Job(sim, tmp_path / str(len(created)), CmsReplicationCollector(), target, **kw)
        created.append(new)
        return new

    yield make
    for j in created:
        j.close()


def run(job: Job) -> dict[tuple[str, tuple[str, ...]], float]:
    status = job.run()
    assert status.up, status.last_error
    return {(s.spec.name, s.label_values): s.value for s in status.samples}


def states(samples: dict) -> dict:
    """The samples that are not points in time (those are compared on their own)."""
    return {k: v for k, v in samples.items() if k[0] not in TIMESTAMPS}


HEALTHY_STATES = {
    **{(f"{PREFIX}replica_up_to_date", (r,)): 1.0 for r in (FE01, "fe02.contoso.com", EDGE01)},
    **{(f"{PREFIX}replica_info", (r, "6.0.9319.534")): 1.0 for r in (FE01, "fe02.contoso.com", EDGE01)},
    (f"{PREFIX}active_master_info", (FE01,)): 1.0,
    (f"{PREFIX}active_agents", ("file_transfer",)): 1.0,
    (f"{PREFIX}active_agents", ("replicator",)): 1.0,
    (f"{PREFIX}file_transfer_agent_events_total", ("1015",)): 0.0,
    (f"{PREFIX}file_transfer_agent_events_total", ("1017",)): 0.0,
}


def test_healthy_exports_replicas_status_and_fta_history(job):
    samples = run(job())
    assert states(samples) == HEALTHY_STATES
    now = time.time()
    heartbeat = samples[(f"{PREFIX}status_timestamp_seconds", ("last_heartbeat", FE01))]  # LastHeartbeats
    assert abs(now - heartbeat) < 3600
    # The healthy estate's only FTA failure is weeks old: history, not a new event.
    last_1017 = samples[(f"{PREFIX}file_transfer_agent_event_last_seen_timestamp_seconds", ("1017",))]
    assert now - last_1017 > 7 * 86400
    assert (f"{PREFIX}file_transfer_agent_event_last_seen_timestamp_seconds", ("1015",)) not in samples
    reports = [v for (name, _), v in samples.items() if name == f"{PREFIX}replica_last_status_report_timestamp_seconds"]
    assert len(reports) == 3 and all(abs(now - ts) < 3600 for ts in reports)


def test_cms_replica_stale_flips_the_edge_replica_and_counts_new_fta_failures(sim, job):
    fe01 = job()
    before = run(fe01)
    sim.set_scenario("cms-replica-stale")
    after = run(fe01)
    expected = dict(HEALTHY_STATES)
    expected[(f"{PREFIX}replica_up_to_date", (EDGE01,))] = 0.0
    expected[(f"{PREFIX}file_transfer_agent_events_total", ("1017",))] = 2.0
    assert states(after) == expected
    key = (f"{PREFIX}file_transfer_agent_event_last_seen_timestamp_seconds", ("1017",))
    assert after[key] > before[key] and time.time() - after[key] < 3600
    edge_report = (f"{PREFIX}replica_last_status_report_timestamp_seconds", (EDGE01,))
    assert time.time() - after[edge_report] > 3600
    # Counted once: the next run sees no newer event.
    assert states(run(fe01)) == expected


def test_first_run_counts_no_history(sim, job):
    sim.set_scenario("cms-replica-stale")
    samples = run(job())
    assert samples[(f"{PREFIX}file_transfer_agent_events_total", ("1017",))] == 0.0
    assert time.time() - samples[(f"{PREFIX}file_transfer_agent_event_last_seen_timestamp_seconds", ("1017",))] < 3600


@pytest.mark.parametrize("scenario", ["edge-provider-missing", "edge-provider-drift", "no-event-112"])
def test_other_scenarios_raise_nothing_here(sim, job, scenario):
    fe01 = job()
    run(fe01)
    sim.set_scenario(scenario)
    assert states(run(fe01)) == HEALTHY_STATES


def test_a_front_end_without_fta_events_reports_zero(job):
    samples = run(job("fe02"))
    assert samples[(f"{PREFIX}file_transfer_agent_events_total", ("1017",))] == 0.0
    assert not any(name == f"{PREFIX}file_transfer_agent_event_last_seen_timestamp_seconds" for name, _ in samples)
    assert samples[(f"{PREFIX}active_master_info", (FE01,))] == 1.0


def test_optional_views_off_keep_the_original_metrics_and_one_call(sim, job):
    fe01 = job(settings={"central_management_store_status": False, "file_transfer_agent_events": False})
    run(fe01)  # opens the pool
    commands = sim.stats()[FE01]["commands"]
    samples = run(fe01)
    assert sim.stats()[FE01]["commands"] - commands == 1
    assert {name for name, _ in samples} == {
        f"{PREFIX}replica_up_to_date",
        f"{PREFIX}replica_last_status_report_timestamp_seconds",
        f"{PREFIX}replica_last_update_creation_timestamp_seconds",
        f"{PREFIX}replica_info",
    }


@pytest.mark.parametrize("fault", ["terminating_error", "non_terminating_error"])
def test_failing_event_read_is_kind_command(sim, job, fault):
    sim.set_fault(FE01, fault, cmdlet="Get-WinEvent")
    status = job().run()
    assert not status.up and status.last_error_kind == "command"
    assert "Get-WinEvent" in status.last_error


# ---------------------------------------------------------------------------------- pure functions


def test_cms_status_with_unknown_property_names():
    status = read_cms_status({
        "MasterFqdn": " FE01.Contoso.com ",
        "LastHeartbeat": "2024-05-01T10:00:00.1234567+02:00",
        "Heartbeats": {"FE02.contoso.com": "2024-05-01T09:00:00Z", "junk": "not a time", "fe03": None},
        "ActiveFileTransferAgents": [],
        "ActiveReplicatorAgents": ["fe01", "fe02"],
        "ProposedFileTransferAgents": ["fe02"],
        "Count": 3,
        "Nested": {"a": {"b": 1}},
    })
    assert status.active_master == "fe01.contoso.com"
    assert status.active_agents == {"file_transfer": 0, "replicator": 2}
    expected_8utc = dt.datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=dt.timezone.utc).timestamp()
    assert status.timestamps == [
        ("heartbeats", "fe02.contoso.com", dt.datetime(2024, 5, 1, 9, tzinfo=dt.timezone.utc).timestamp()),
        ("last_heartbeat", "fe01.contoso.com", expected_8utc),
    ]


@pytest.mark.parametrize("name, label", [
    ("LastHeartbeats", "last_heartbeat"),  # known: says what the time is
    ("LASTHEARTBEATS", "last_heartbeat"),
    ("WhenChecked", "when_checked"),  # unknown: its name in snake_case
    ("LastFTAHeartbeat", "last_fta_heartbeat"),
    ("Last.Sync-Time2", "last_sync_time2"),
    ("___", "unnamed"),
])
def test_cms_status_times_are_labelled_in_snake_case(name, label):
    assert status_time_label(name) == label


def test_cms_status_without_a_master_names_plain_times_unknown():
    status = read_cms_status({"WhenChecked": "2024-05-01T10:00:00Z"})
    assert status.active_master is None and status.timestamps[0][1] == "unknown"


def _event(event_id, record_id, hours_ago=1.0):
    return {"Id": event_id, "RecordId": record_id,
            "TimeCreated": dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours_ago)}


def test_fta_state_counts_only_events_after_the_first_read():
    state = FtaEventState()
    state.update([_event(1017, 10, 5), _event(1015, 8, 6)])
    assert state.counts == {1015: 0, 1017: 0} and state.cursor == 10 and set(state.last_seen) == {1015, 1017}
    state.update([_event(1017, 12, 0.1), _event(1015, 11, 0.2), _event(1017, 10, 5)])
    assert state.counts == {1015: 1, 1017: 1} and state.cursor == 12
    state.update([])  # NoMatchingEventsFound: nothing changes
    assert state.counts == {1015: 1, 1017: 1} and state.cursor == 12
    state.update([_event(1017, 3, 0.01)])  # the log was cleared: restart from its newest record
    assert state.counts == {1015: 1, 1017: 1} and state.cursor == 3
    state.update([_event(1017, 4, 0), _event(4242, 5, 0), _event(1017, None, 0)])
    assert state.counts == {1015: 1, 1017: 2} and state.cursor == 4


def test_fta_state_first_read_without_events_counts_everything_later():
    state = FtaEventState()
    state.update([])
    assert state.cursor == 0
    state.update([_event(1015, 1)])
    assert state.counts[1015] == 1
