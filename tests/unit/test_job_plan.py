"""Which jobs run: the file's `enabled`, overridden by --collector.<name> / --no-collector.<name>;
and what a reload changes: only the jobs whose own inputs differ."""

from __future__ import annotations

import copy

import pytest

from collectors import registry
from exporter.config import load_config
from exporter.job_plan import compare, planned_jobs
from tests.conftest import write_config

COLLECTORS = registry.by_name()
DOCUMENT = {
    "credentials": {"mon": {"username": "CONTOSO\\svc", "password_env": "LYNC_OWA_TEST_PASSWORD"}},
    "collectors": {"cms_replication": {"enabled": False}, "owa_app_pool": {"interval": "60s"}},
    "targets": [
        {"name": "ex01", "host": "ex01.contoso.com", "roles": ["exchange_mailbox"], "credential": "mon"},
        {"name": "fe01", "host": "fe01.contoso.com", "roles": ["lync_frontend"], "credential": "mon",
         "collectors": {"lync_topology": {"enabled": False}}},
        {"name": "fe02", "host": "fe02.contoso.com", "roles": ["lync_frontend"], "credential": "mon"},
    ],
}


def load(tmp_path, document):
    return load_config(write_config(tmp_path, document), COLLECTORS)


def ids(jobs):
    return {job.id for job in jobs}


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


def test_switches_override_the_files_enabled_both_ways_and_everywhere(tmp_path):
    config = load(tmp_path, DOCUMENT)
    plain = ids(planned_jobs(config, COLLECTORS))
    assert plain == ids(config.jobs(COLLECTORS))  # no switch: exactly what the file says
    assert "cms_replication/fe01" not in plain and "lync_topology/fe01" not in plain
    assert "lync_topology/fe02" in plain and "owa_app_pool/ex01" in plain

    switched = planned_jobs(config, COLLECTORS, {"cms_replication": True, "lync_topology": True,
                                                 "owa_app_pool": False})
    assert ids(switched) == (plain | {"cms_replication/fe01", "cms_replication/fe02", "lync_topology/fe01"}) \
        - {"owa_app_pool/ex01"}
    # The switched-on job carries the file's other settings, with enabled saying what it does.
    cms = next(job for job in switched if job.id == "cms_replication/fe01")
    assert cms.settings.enabled is True and cms.settings.interval == 60.0


def test_a_reload_changes_only_the_jobs_whose_own_inputs_differ(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = planned_jobs(load(tmp_path / "old", DOCUMENT), COLLECTORS)
    document = copy.deepcopy(DOCUMENT)
    document["collectors"]["owa_app_pool"]["interval"] = "45s"  # one collector's setting on ex01
    document["targets"].pop(2)  # fe02 goes
    document["targets"].append({"name": "edge01", "host": "edge01.contoso.com", "roles": ["lync_edge"],
                                "credential": "mon"})
    new = planned_jobs(load(tmp_path / "new", document), COLLECTORS)

    change = compare({job.id: job for job in old}, new)
    assert [job.id for job in change.changed] == ["owa_app_pool/ex01"]
    assert sorted(change.removed) == sorted(i for i in ids(old) if i.endswith("/fe02"))
    assert ids(change.added) == {i for i in ids(new) if i.endswith("/edge01")} and change.added
    # Every other ex01 job is unchanged although ex01's Target (which holds every collector's settings) differs.
    assert {i for i in change.unchanged if i.endswith("/ex01")} == {i for i in ids(old) if i.endswith("/ex01")} \
        - {"owa_app_pool/ex01"}
    assert change.summary() == (f"{len(change.added)} jobs added, {len(change.removed)} removed, 1 changed, "
                                f"{len(change.unchanged)} unchanged")


def test_a_new_password_restarts_the_targets_jobs(tmp_path, monkeypatch):
    secret = tmp_path / "password"
    secret.write_text("first")
    document = copy.deepcopy(DOCUMENT)
    document["credentials"]["mon"] = {"username": "CONTOSO\\svc", "password_file": str(secret)}
    old = planned_jobs(load(tmp_path, document), COLLECTORS)
    secret.write_text("second")
    new = planned_jobs(load(tmp_path, document), COLLECTORS)
    change = compare({job.id: job for job in old}, new)
    assert ids(change.changed) == ids(old) and not change.unchanged
