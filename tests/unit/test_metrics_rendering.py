"""Rendering snapshots: self-metrics, label hygiene, staleness and the exposition cache."""

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.contract import MetricSpec, label_value
from exporter.metrics import ExpositionCache
from exporter.state import SnapshotStore

SPEC = MetricSpec("lync_owa_test_thing", "gauge", "A test gauge.", ("replica",))
COUNTER = MetricSpec("lync_owa_test_events_total", "counter", "A test counter.", ())


def families(cache):
    return {f.name: f for f in text_string_to_metric_families(cache.render().decode())}


def test_metric_spec_enforces_naming():
    with pytest.raises(ValueError):
        MetricSpec("other_thing", "gauge", "x")
    with pytest.raises(ValueError):
        MetricSpec("lync_owa_thing_total", "gauge", "x")
    with pytest.raises(ValueError):
        MetricSpec("lync_owa_events", "counter", "x")
    with pytest.raises(ValueError):
        SPEC.sample(1)  # missing label


def test_label_values_are_sanitised_and_bounded():
    assert label_value("\u200eab\x00c\nd") == "abcd"
    assert len(label_value("x" * 1000)) == 128


def test_self_metrics_for_every_job_before_first_run():
    store = SnapshotStore()
    store.register("cms_replication", "fe01", 60)
    fams = families(ExpositionCache(store, [SPEC], process_metrics=False))
    assert fams["lync_owa_collector_up"].samples[0].value == 0
    kinds = {s.labels["kind"] for s in fams["lync_owa_collector_errors"].samples if s.name.endswith("_total")}
    assert kinds == {"auth", "unreachable", "timeout", "command", "shape"}
    assert fams["lync_owa_build_info"].samples[0].value == 1
    assert "lync_owa_test_thing" in fams  # declared metrics carry HELP/TYPE even without samples


def test_samples_render_with_target_label_and_failure_keeps_them():
    store = SnapshotStore()
    store.register("c", "fe01", 60)
    store.record_success("c", "fe01", [SPEC.sample(1, replica="edge01"), COUNTER.sample(5)], 0.1)
    cache = ExpositionCache(store, [SPEC, COUNTER], process_metrics=False)
    fams = families(cache)
    assert fams["lync_owa_test_thing"].samples[0].labels == {"target": "fe01", "replica": "edge01"}
    assert fams["lync_owa_test_events"].type == "counter"
    store.record_failure("c", "fe01", "timeout", "slow", 2.0)
    fams = families(cache)
    assert fams["lync_owa_collector_up"].samples[0].value == 0
    assert fams["lync_owa_test_thing"].samples  # one failure does not blank the data
    errors = {s.labels["kind"]: s.value for s in fams["lync_owa_collector_errors"].samples if s.name.endswith("_total")}
    assert errors["timeout"] == 1 and errors["auth"] == 0


def test_data_of_a_job_that_keeps_failing_goes_stale():
    store = SnapshotStore(staleness_intervals=3)
    store.register("c", "fe01", 0.05)  # bound: 0.15 s
    store.record_success("c", "fe01", [SPEC.sample(1, replica="edge01")], 0.1)
    cache = ExpositionCache(store, [SPEC], process_metrics=False)
    assert families(cache)["lync_owa_test_thing"].samples
    time.sleep(0.2)
    assert not families(cache)["lync_owa_test_thing"].samples


def test_exposition_is_cached_until_a_snapshot_changes():
    store = SnapshotStore()
    store.register("c", "fe01", 60)
    cache = ExpositionCache(store, [SPEC], process_metrics=False)
    first = cache.render()
    assert cache.render() is first and cache.rebuilds == 1
    store.record_success("c", "fe01", [SPEC.sample(1, replica="edge01")], 0.1)
    assert cache.render() != first and cache.rebuilds == 2
