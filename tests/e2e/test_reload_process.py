"""Reload without restart, through the installed console script as an operator runs it: SIGHUP and
POST /-/reload against a real `lync-owa-exporter run` polling the simulator, with real .evtx exports.

The owa_events job reads a folder of exported event logs: what was there at its first pass is history,
and every later event is counted once from its per-file cursors. Keeping the cursors across a reload
shows in the counter: it goes on from where it was and counts only the new export. A restarted job
would start again at 0 and take every file present as history.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors import registry
from simulator.server import Simulator
from tests.conftest import (
    PASSWORD_ENV,
    SIM_PASSWORD,
    SIM_USERNAME,
    estate_config,
    free_port,
    unavailable,
    write_config,
)
from tests.evtx_writer import EvtxWriter, background_event, owa_event

pytestmark = pytest.mark.e2e

FE01, FE02, EX01 = "fe01.contoso.com", "fe02.contoso.com", "ex01.contoso.com"
USED = ("cms_replication", "owa_app_pool", "owa_events")
TIMEOUT = 60


def console_script() -> Path:
    script = Path(sys.executable).parent / "lync-owa-exporter"
    if not script.exists():
        unavailable(f"the console script is not installed beside {sys.executable} (pip install -e .)")
    return script


def export(path: Path, first_xml_id: int, minutes_ago: int) -> None:
    """An exported Application log: 20 events a minute apart, one of them an Event 112."""
    import random

    rnd = random.Random(first_xml_id)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes_ago)
    writer = EvtxWriter(computer="EX01.contoso.com", xml_record_id_offset=first_xml_id - 1)
    writer.add_all([owa_event(start + dt.timedelta(minutes=i)) if i == 7 else
                    background_event(rnd, start + dt.timedelta(minutes=i)) for i in range(20)])
    partial = path.with_name(path.name + ".partial")
    writer.write(partial)
    os.replace(partial, path)  # as a copy job would: never half a file under the real name


def document(sim: Simulator, folder: Path, hosts: list[str], app_pool_interval: str) -> dict:
    return estate_config(sim, interval="1s", timeout="800ms", hosts=hosts, collectors={
        "cms_replication": {},
        "owa_app_pool": {"interval": app_pool_interval},
        "owa_events": {"source": "files", "path": str(folder), "observer": "polling"},
    })


class Running:
    def __init__(self, process: subprocess.Popen, url: str, log_path: Path) -> None:
        self.process, self.url, self.log_path = process, url, log_path

    def scrape(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            return {f.name: f for f in text_string_to_metric_families(response.read().decode())}

    def value(self, name: str, **labels) -> float | None:
        family = self.scrape().get(name)
        for sample in family.samples if family else []:
            if sample.name in (name, name + "_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None

    def targets(self) -> set[str]:
        family = self.scrape()["lync_owa_collector_up"]
        return {sample.labels["target"] for sample in family.samples}

    def wait(self, what: str, check) -> None:
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            assert self.process.poll() is None, f"exited with {self.process.returncode}:\n{self.log()}"
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def post_reload(self) -> tuple[int, str]:
        request = urllib.request.Request(f"{self.url}/-/reload", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


@pytest.fixture
def running(tmp_path):
    script = console_script()
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username=SIM_USERNAME, password=SIM_PASSWORD)
    sim.start()
    folder = tmp_path / "exports"
    folder.mkdir()
    export(folder / "Application-1.evtx", first_xml_id=1001, minutes_ago=120)
    config = write_config(tmp_path, document(sim, folder, [FE01, FE02, EX01], app_pool_interval="1s"))
    port = free_port()
    switches = [f"--no-collector.{name}" for name in registry.by_name() if name not in USED]
    log_path = tmp_path / "exporter.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen([str(script), "run", "--config.file", str(config), "--web.enable-lifecycle",
                                    "--web.listen-address", f"127.0.0.1:{port}", *switches],
                                   env={**os.environ, PASSWORD_ENV: SIM_PASSWORD}, stdout=log_file,
                                   stderr=subprocess.STDOUT)
    try:
        yield Running(process, f"http://127.0.0.1:{port}", log_path), sim, folder, config
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        sim.stop()


def test_sighup_and_http_reload_a_running_process_keeping_unchanged_jobs_state(running, tmp_path):
    exporter, sim, folder, config = running
    events = {"collector": "owa_events", "target": "ex01"}
    exporter.wait("every job up", lambda: exporter.targets() == {"fe01", "fe02", "ex01"} and all(
        s.value == 1 for s in exporter.scrape()["lync_owa_collector_up"].samples))
    assert exporter.value("lync_owa_event_log_events", target="ex01", event="im_initialised") == 0  # history
    export(folder / "Application-2.evtx", first_xml_id=1021, minutes_ago=30)
    exporter.wait("the new export's Event 112 counted",
                  lambda: exporter.value("lync_owa_event_log_events", target="ex01", event="im_initialised") == 1)
    exporter.wait("a few runs of the app pool job", lambda: exporter.value(
        "lync_owa_collector_runs", collector="owa_app_pool", target="ex01") >= 8)
    runs_before = exporter.value("lync_owa_collector_runs", **events)
    app_pool_runs_before = exporter.value("lync_owa_collector_runs", collector="owa_app_pool", target="ex01")
    started_at = exporter.value("lync_owa_config_last_reload_success_timestamp_seconds")

    # fe02 goes; owa_app_pool's interval changes (its job restarts); owa_events stays as it is.
    write_config(tmp_path, document(sim, folder, [FE01, EX01], app_pool_interval="5s"))
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait("fe02's series gone", lambda: "fe02" not in exporter.targets())
    # Logged once the removed target's sessions are closed, just after its series went.
    exporter.wait("the reload logged", lambda: "jobs updated: 0 jobs added, 1 removed, 1 changed, 2 unchanged"
                  in exporter.log())
    assert exporter.value("lync_owa_collector_runs", collector="owa_app_pool", target="ex01") < app_pool_runs_before
    assert exporter.value("lync_owa_collector_runs", **events) >= runs_before  # counters go on
    assert exporter.value("lync_owa_event_log_events", target="ex01", event="im_initialised") == 1
    export(folder / "Application-3.evtx", first_xml_id=1041, minutes_ago=10)
    exporter.wait("only the third export's Event 112 counted, from the kept cursors",
                  lambda: exporter.value("lync_owa_event_log_events", target="ex01", event="im_initialised") == 2)
    assert exporter.value("lync_owa_config_last_reload_successful") == 1.0
    reloaded_at = exporter.value("lync_owa_config_last_reload_success_timestamp_seconds")
    assert reloaded_at > started_at

    # A broken file: logged, the running configuration stays, the metric says so.
    config.write_text(config.read_text() + "\n  - [\n")
    exporter.process.send_signal(signal.SIGHUP)
    exporter.wait("the failed reload in the metrics",
                  lambda: exporter.value("lync_owa_config_last_reload_successful") == 0.0)
    assert re.search(r'level=error .*msg="reload failed, the running configuration stays: .*config\.yaml:\d+',
                     exporter.log())
    assert exporter.value("lync_owa_config_last_reload_success_timestamp_seconds") == reloaded_at
    runs = exporter.value("lync_owa_collector_runs", **events)
    exporter.wait("the old jobs still running", lambda: exporter.value("lync_owa_collector_runs", **events) > runs)

    # Fixed again, through the lifecycle endpoint this time.
    write_config(tmp_path, document(sim, folder, [FE01, FE02, EX01], app_pool_interval="5s"))
    assert exporter.post_reload() == (200, "configuration reloaded: 1 jobs added, 0 removed, 0 changed, "
                                           "3 unchanged\n")
    assert "fe02" in exporter.targets()
    assert exporter.value("lync_owa_config_last_reload_successful") == 1.0
    assert exporter.value("lync_owa_event_log_events", target="ex01", event="im_initialised") == 2

    exporter.process.send_signal(signal.SIGTERM)
    assert exporter.process.wait(30) == 0
    assert SIM_PASSWORD not in exporter.log()
