"""Reloading a running exporter in-process: the real Exporter, its HTTP server on loopback, the real
pypsrp client against the simulator (Basic auth), configuration files on disk.

The same behaviour through a real process and SIGHUP is in tests/e2e/test_reload_process.py.
"""

from __future__ import annotations

import copy
import logging
import time
import urllib.error
import urllib.request

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from collectors import registry
from exporter.app import Exporter
from exporter.config import load_config
from exporter.version import BUILD
from tests.conftest import estate_config, write_config
from tests.tls_material import (
    WEB_HASH,
    WEB_PASSWORD,
    WEB_USER,
    TestCA,
    write_web_config,
)

FE01, FE02, EX01, EX02 = "fe01.contoso.com", "fe02.contoso.com", "ex01.contoso.com", "ex02.contoso.com"
USED = ("cms_replication", "owa_app_pool")
ONLY_USED = {name: name in USED for name in registry.by_name()}
TIMEOUT = 20


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


def document(sim, hosts, app_pool_interval="1s"):
    return estate_config(sim, interval="1s", timeout="800ms", hosts=hosts,
                         collectors={"cms_replication": {}, "owa_app_pool": {"interval": app_pool_interval}})


@pytest.fixture
def exporters():
    started: list[Exporter] = []

    def start(path, **kwargs) -> Exporter:
        exporter = Exporter(load_config(path, registry.by_name()), "127.0.0.1:0",
                            collector_switches=kwargs.pop("collector_switches", ONLY_USED), **kwargs)
        exporter.start()
        started.append(exporter)
        return exporter

    yield start
    for exporter in started:
        exporter.stop()


def families(exporter: Exporter) -> dict:
    return {f.name: f for f in text_string_to_metric_families(exporter.cache.render().decode())}


def value(exporter: Exporter, name: str, **labels) -> float | None:
    family = families(exporter).get(name)
    for sample in family.samples if family else []:
        if all(sample.labels.get(k) == v for k, v in labels.items()) and sample.name in (name, name + "_total"):
            return sample.value
    return None


def wait_for(what: str, check, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def all_up(exporter: Exporter) -> bool:
    return all(job.up for job in exporter.store.jobs())


def test_a_reload_starts_new_jobs_stops_removed_ones_restarts_changed_ones_and_keeps_the_rest(
        basic_sim, tmp_path, exporters):
    path = write_config(tmp_path, document(basic_sim, [FE01, FE02, EX01]))
    exporter = exporters(path)
    wait_for("every job up", lambda: all_up(exporter) and len(exporter.store.jobs()) == 3)
    wait_for("a few runs", lambda: all(job.runs >= 3 for job in exporter.store.jobs()))
    before = {runner.job_id: runner for runner in exporter.runners}
    kept_state = before["cms_replication/fe01"].state
    assert basic_sim.stats()[FE02]["shells_open"] >= 1  # its Windows (and Lync) endpoints

    # fe02 goes, ex02 comes, owa_app_pool's interval changes (so ex01's app pool job restarts).
    write_config(tmp_path, document(basic_sim, [FE01, EX01, EX02], app_pool_interval="2s"))
    result = exporter.reloader.reload()

    assert result == (True, "1 jobs added, 1 removed, 1 changed, 1 unchanged")
    after = {runner.job_id: runner for runner in exporter.runners}
    assert set(after) == {"cms_replication/fe01", "owa_app_pool/ex01", "owa_app_pool/ex02"}
    assert after["cms_replication/fe01"] is before["cms_replication/fe01"]  # same runner, same state object
    assert after["cms_replication/fe01"].state is kept_state
    assert after["owa_app_pool/ex01"] is not before["owa_app_pool/ex01"]
    assert after["owa_app_pool/ex01"].spec.settings.interval == 2.0
    assert before["cms_replication/fe02"].retired and before["owa_app_pool/ex01"].retired
    # The removed target's series left the exposition before the reload returned; its shell was closed.
    assert value(exporter, "lync_owa_collector_up", target="fe02") is None
    assert value(exporter, "lync_owa_collector_runs", collector="cms_replication", target="fe01") >= 3
    assert basic_sim.stats()[FE02]["shells_open"] == 0
    wait_for("the new job up", lambda: value(exporter, "lync_owa_collector_up", target="ex02") == 1.0)
    assert value(exporter, "lync_owa_config_last_reload_successful") == 1.0


def test_a_broken_file_keeps_the_running_configuration_and_says_why(basic_sim, tmp_path, exporters, caplog):
    path = write_config(tmp_path, document(basic_sim, [FE01]))
    exporter = exporters(path)
    started_at = value(exporter, "lync_owa_config_last_reload_success_timestamp_seconds")
    assert value(exporter, "lync_owa_config_last_reload_successful") == 1.0 and started_at > 0
    runners = list(exporter.runners)

    path.write_text(path.read_text().replace("interval: 1s", "interval: soon", 1))
    with caplog.at_level(logging.ERROR, logger="exporter.reload"):
        ok, message = exporter.reloader.reload()
    assert not ok and "collectors.cms_replication.interval" in message and "config.yaml:" in message
    assert "reload failed, the running configuration stays" in caplog.text and "interval" in caplog.text
    assert exporter.runners == runners and not any(r.retired for r in runners)
    assert value(exporter, "lync_owa_config_last_reload_successful") == 0.0
    assert value(exporter, "lync_owa_config_last_reload_success_timestamp_seconds") == started_at

    write_config(tmp_path, document(basic_sim, [FE01]))
    assert exporter.reloader.reload() == (True, "0 jobs added, 0 removed, 0 changed, 1 unchanged")
    assert value(exporter, "lync_owa_config_last_reload_successful") == 1.0
    assert value(exporter, "lync_owa_config_last_reload_success_timestamp_seconds") > started_at


def post(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_http_reload_answers_as_prometheus_does(basic_sim, tmp_path, exporters):
    path = write_config(tmp_path, document(basic_sim, [FE01]))
    closed = exporters(path)
    assert post(f"{closed.url}/-/reload") == (403, "Lifecycle API is not enabled.\n")
    assert requests.get(f"{closed.url}/-/reload", timeout=TIMEOUT).status_code == 405

    exporter = exporters(path, enable_lifecycle=True)
    write_config(tmp_path, document(basic_sim, [FE01, FE02]))
    assert post(f"{exporter.url}/-/reload") == (200, "configuration reloaded: 1 jobs added, 0 removed, "
                                                     "0 changed, 1 unchanged\n")
    assert {r.job_id for r in exporter.runners} == {"cms_replication/fe01", "cms_replication/fe02"}
    path.write_text("targets: [\n")
    status, body = post(f"{exporter.url}/-/reload")
    assert status == 500 and body.startswith("failed to reload config: ") and "config.yaml:" in body
    assert len(exporter.runners) == 2


def test_telemetry_path_moves_the_metrics(basic_sim, tmp_path, exporters):
    exporter = exporters(write_config(tmp_path, document(basic_sim, [FE01])), telemetry_path="/probe/metrics")
    text = requests.get(f"{exporter.url}/probe/metrics", timeout=TIMEOUT).text
    (info,) = [f for f in text_string_to_metric_families(text) if f.name == "lync_owa_build_info"]
    # What --version prints, and the shard (one exporter polling every target: shard 0 of 1).
    assert info.samples[0].labels == {**BUILD.labels(), "shard": "0", "total_shards": "1"}
    assert info.samples[0].value == 1
    assert set(BUILD.labels()) == {"version", "revision", "build_date", "python_version"}
    assert requests.get(f"{exporter.url}/metrics", timeout=TIMEOUT).status_code == 404
    assert "href='/probe/metrics'" in requests.get(f"{exporter.url}/", timeout=TIMEOUT).text


def test_the_web_configuration_is_read_again_when_it_changes(basic_sim, tmp_path, exporters, caplog):
    import bcrypt

    from exporter.web_config import load_web_config

    web_path = write_web_config(tmp_path, {"basic_auth_users": {WEB_USER: WEB_HASH}})
    exporter = exporters(write_config(tmp_path, document(basic_sim, [FE01])),
                         web_config=load_web_config(web_path))
    metrics = f"{exporter.url}/metrics"
    assert requests.get(metrics, auth=(WEB_USER, WEB_PASSWORD), timeout=TIMEOUT).status_code == 200

    # A new user replaces the old one: the very next request follows the file, no reload needed.
    new_hash = bcrypt.hashpw(b"second-password", bcrypt.gensalt(rounds=4)).decode()
    write_web_config(tmp_path, {"basic_auth_users": {"grafana": new_hash}})
    assert requests.get(metrics, auth=(WEB_USER, WEB_PASSWORD), timeout=TIMEOUT).status_code == 401
    assert requests.get(metrics, auth=("grafana", "second-password"), timeout=TIMEOUT).status_code == 200

    # A broken file keeps what works and is reported once, not at every request.
    with caplog.at_level(logging.ERROR, logger="exporter.web_config_reload"):
        write_web_config(tmp_path, {"basic_auth_users": {"grafana": "not-a-bcrypt-hash"}})
        for _ in range(3):
            assert requests.get(metrics, auth=("grafana", "second-password"), timeout=TIMEOUT).status_code == 200
        # Turning TLS on needs a restart (the socket's protocol is chosen at start): refused the same way.
        server = TestCA(tmp_path).issue("server", server=True)
        write_web_config(tmp_path, {"tls_server_config": {"cert_file": str(server.cert_path),
                                                          "key_file": str(server.key_path)}})
        assert requests.get(metrics, auth=("grafana", "second-password"), timeout=TIMEOUT).status_code == 200
    reports = [r.getMessage() for r in caplog.records
               if r.name == "exporter.web_config_reload" and r.levelno == logging.ERROR]
    assert len(reports) == 2, reports
    assert "grafana" in reports[0] and "not-a-bcrypt-hash" not in reports[0]
    assert "turns TLS on; that needs a restart" in reports[1]

    # A reload reports the broken web configuration too, and keeps both files' running versions.
    ok, message = exporter.reloader.reload()
    assert not ok and "web-config.yml" in message
    assert value(exporter, "lync_owa_config_last_reload_successful") == 0.0
    write_web_config(tmp_path, {"basic_auth_users": {WEB_USER: WEB_HASH}})
    assert exporter.reloader.reload().ok
    assert requests.get(metrics, auth=(WEB_USER, WEB_PASSWORD), timeout=TIMEOUT).status_code == 200


def test_collector_switches_survive_a_reload(basic_sim, tmp_path, exporters):
    doc = document(basic_sim, [FE01])
    doc["collectors"]["cms_replication"]["enabled"] = False
    path = write_config(tmp_path, doc)
    exporter = exporters(path, collector_switches={**ONLY_USED, "owa_app_pool": False})
    assert [r.job_id for r in exporter.runners] == ["cms_replication/fe01"]  # the switch beats enabled: false
    write_config(tmp_path, copy.deepcopy(doc))
    assert exporter.reloader.reload() == (True, "0 jobs added, 0 removed, 0 changed, 1 unchanged")
