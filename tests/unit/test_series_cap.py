"""The cap on series per target: counted, cut in order, shared by a target's jobs, logged once.

Through the real JobRunner (a collector that reports as many replicas as a hostile server would)
and the real exposition, with the setting read from a real configuration file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.contract import Collector as CollectorBase
from collectors.contract import CollectorSettings, MetricSpec, NoState, Sample
from exporter.config import ConfigError, GlobalSettings, JobSpec, Target
from exporter.config.model import Credential
from exporter.metrics import ExpositionCache
from exporter.scheduler import JobRunner
from exporter.series_cap import SeriesCap
from exporter.state import SnapshotStore
from tests.unit.test_config import BASE, load, problems

REPLICA = MetricSpec("lync_owa_test_replica_up", "gauge", "One series per replica the server reports.", ("replica",))


@dataclass
class Reports:
    replicas: int


class ManyReplicas(CollectorBase[CollectorSettings, NoState]):
    """What a server that reports ``replicas`` CMS replicas makes a collector return."""

    name = "many_replicas"
    roles = frozenset({"lync_frontend"})
    metrics = (REPLICA,)

    def __init__(self, reports: Reports) -> None:
        self.reports = reports

    def collect(self, ctx):
        return [Sample(REPLICA, (f"replica{i:05d}.contoso.com",), 1.0) for i in range(self.reports.replicas)]


def job(collector_name: str) -> JobSpec:
    target = Target("fe01", "fe01.contoso.com", frozenset({"lync_frontend"}), Credential("c", "u", password=None))
    return JobSpec(collector_name, target, CollectorSettings(interval=60, timeout=5))


def replica_series(cache: ExpositionCache) -> list[str]:
    text = cache.render().decode()
    return [s.labels["replica"] for f in text_string_to_metric_families(text) if f.name == REPLICA.name
            for s in f.samples]


def dropped(cache: ExpositionCache) -> dict[str, float]:
    text = cache.render().decode()
    return {s.labels["target"]: s.value for f in text_string_to_metric_families(text)
            if f.name == "lync_owa_target_series_dropped" for s in f.samples}


def test_a_target_past_the_cap_keeps_the_first_series_and_counts_the_rest(caplog):
    store, cap, reports = SnapshotStore(), SeriesCap(), Reports(5000)
    runner = JobRunner(ManyReplicas(reports), job("many_replicas"), store, sessions=None,
                       global_settings=GlobalSettings(max_series_per_target=100))
    runner.series_cap = cap
    cache = ExpositionCache(store, [REPLICA], process_metrics=False, live_collectors=[cap])
    with caplog.at_level(logging.WARNING, logger="exporter.series_cap"):
        runner()
        runner()
    assert store.jobs()[0].up  # the job itself succeeded
    assert replica_series(cache) == [f"replica{i:05d}.contoso.com" for i in range(100)]
    assert dropped(cache) == {"fe01": 4900.0}
    logged = [r for r in caplog.records if "cap on series per target" in r.getMessage()]
    assert len(logged) == 1 and logged[0].series_dropped == 4900 and logged[0].target == "fe01"

    reports.replicas = 40  # back under the cap: nothing cut, and a later cut is logged again
    with caplog.at_level(logging.WARNING, logger="exporter.series_cap"):
        runner()
    assert len(replica_series(cache)) == 40 and dropped(cache) == {"fe01": 0.0}


def test_the_jobs_of_one_target_share_its_cap():
    cap = SeriesCap()
    first = cap.admit("fe01", "a/fe01", [Sample(REPLICA, (str(i),), 1.0) for i in range(70)], limit=100)
    second = cap.admit("fe01", "b/fe01", [Sample(REPLICA, (str(i),), 1.0) for i in range(70)], limit=100)
    other = cap.admit("fe02", "a/fe02", [Sample(REPLICA, (str(i),), 1.0) for i in range(70)], limit=100)
    assert (len(first), len(second), len(other)) == (70, 30, 70)
    assert cap.dropped("fe01") == 40 and cap.dropped("fe02") == 0
    again = cap.admit("fe01", "a/fe01", [Sample(REPLICA, (str(i),), 1.0) for i in range(70)], limit=100)
    assert len(again) == 70  # a job's own earlier series never count against it
    cap.forget("fe01", "b/fe01")  # a reload removed the job
    assert cap.dropped("fe01") == 0


def test_the_setting_defaults_to_2000_and_is_checked(tmp_path):
    assert load(tmp_path, BASE).global_.max_series_per_target == 2000
    text = BASE.replace("  max_concurrent_jobs: 16\n", "  max_concurrent_jobs: 16\n  max_series_per_target: 500\n")
    assert load(tmp_path, text).global_.max_series_per_target == 500
    for bad in ("0", "'many'", "2000000"):
        found = problems(tmp_path, text.replace("max_series_per_target: 500", f"max_series_per_target: {bad}"))
        assert [p.path for p in found] == ["global.max_series_per_target"], found
    with pytest.raises(ConfigError):
        load(tmp_path, text.replace("max_series_per_target", "max_series_per_targets"))
