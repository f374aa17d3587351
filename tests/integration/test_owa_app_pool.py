"""Check E5 through the real path: JobRunner, pypsrp over loopback, the simulated estate, and a
real HTTP(S) server on loopback for OWA's health page."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
import warnings
from pathlib import Path

import pytest
import yaml
from urllib3.exceptions import InsecureRequestWarning

from collectors.owa_app_pool.collector import POOL_STATES, OwaAppPoolCollector
from tests.conftest import free_port
from tests.integration.collector_harness import Job

STATE = "lync_owa_app_pool_state"
RUNNING = "lync_owa_app_pool_worker_running"
STARTED = "lync_owa_app_pool_worker_start_timestamp_seconds"
HC_UP = "lync_owa_healthcheck_up"
HC_STATUS = "lync_owa_healthcheck_status_code"
W3WP = r"c:\windows\system32\inetsrv\w3wp.exe"


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


@pytest.fixture
def jobs(sim, tmp_path):
    made: list[Job] = []

    def make(target: str, **settings) -> Job:
        job = Job(sim, tmp_path, OwaAppPoolCollector(), target, settings=settings)
        made.append(job)
        return job

    yield make
    for job in made:
        job.close()


def state_of(job: Job) -> str:
    values = job.values(STATE)
    assert sorted(values) == sorted((s,) for s in POOL_STATES), values
    (on,) = [labels[0] for labels, value in values.items() if value == 1]
    assert sum(values.values()) == 1
    return on


def age_of_worker(job: Job) -> dt.timedelta:
    (started,) = job.values(STARTED).values()
    return dt.datetime.now(dt.timezone.utc) - dt.datetime.fromtimestamp(started, dt.timezone.utc)


DELETE = "__delete__"  # written as the scenario tag !delete


def overlay(sim, tmp_path: Path, name: str, hosts: dict) -> None:
    """Switch the estate to ``healthy`` plus these host changes (a scenario file of the test's own)."""
    text = yaml.safe_dump({"base": "healthy", "description": name, "hosts": hosts})
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(DELETE, "!delete"))
    sim.set_scenario(path)


def worker(pid: int, pool: str, started: str) -> dict:
    line = f'{W3WP} -ap "{pool}" -v "v4.0" -h "C:\\inetpub\\temp\\apppools\\{pool}\\{pool}.config" -w "" -m 0'
    return {"name": "w3wp.exe", "process_id": pid, "started": started, "command_line": line,
            "executable_path": W3WP, "parent_process_id": 1876}


def test_healthy_pool_started_with_its_worker(jobs):
    ex01, ex02 = jobs("ex01"), jobs("ex02")
    for job, age in ((ex01, dt.timedelta(days=3)), (ex02, dt.timedelta(hours=26))):
        assert job.run().up, job.status.last_error
        assert state_of(job) == "Started"
        assert job.values(RUNNING) == {(): 1}
        assert abs(age_of_worker(job) - age) < dt.timedelta(minutes=10)
        assert job.values(HC_UP) == {} and job.values(HC_STATUS) == {}  # the probe is off by default


def test_apppool_stopped_flips_only_ex01(sim, jobs):
    ex01, ex02 = jobs("ex01"), jobs("ex02")
    sim.set_scenario("apppool-stopped")
    assert ex01.run().up and ex02.run().up
    assert state_of(ex01) == "Stopped"
    assert ex01.values(RUNNING) == {(): 0} and ex01.values(STARTED) == {}
    assert state_of(ex02) == "Started" and ex02.values(RUNNING) == {(): 1} and len(ex02.values(STARTED)) == 1
    sim.set_scenario("healthy")
    assert ex01.run().up
    assert state_of(ex01) == "Started" and ex01.values(RUNNING) == {(): 1}


@pytest.mark.parametrize("state", ["Starting", "Stopping", "Unknown"])
def test_every_state_is_reported(sim, tmp_path, jobs, state):
    overlay(sim, tmp_path, f"pool-{state}", {"ex01.contoso.com": {"windows": {"app_pools": {
        "MSExchangeOWAAppPool": {"state": state}}}}})
    job = jobs("ex01")
    assert job.run().up
    assert state_of(job) == state


def test_other_pools_and_overlapped_recycle(sim, tmp_path, jobs):
    # The calendar pool's worker is the newest w3wp, and its name starts like OWA's: never OWA's.
    # OWA's pool is recycling: the old worker (3 days) and the new one (4 min) overlap.
    overlay(sim, tmp_path, "recycle", {"ex01.contoso.com": {"windows": {"processes": {
        "calendar-w3wp": worker(7001, "MSExchangeOWACalendarAppPool", "-1m"),
        "owa-w3wp-new": worker(7002, "msexchangeowaapppool", "-4m"),
        "no-command-line": {"name": "w3wp.exe", "process_id": 7003, "started": "now"},
    }}}})
    job = jobs("ex01")
    assert job.run().up
    assert job.values(RUNNING) == {(): 1}
    assert dt.timedelta(minutes=3) < age_of_worker(job) < dt.timedelta(minutes=14)


def test_only_a_calendar_worker_means_no_owa_worker(sim, tmp_path, jobs):
    overlay(sim, tmp_path, "calendar-only", {"ex01.contoso.com": {"windows": {"processes": {
        "owa-w3wp": DELETE,
        "calendar-w3wp": worker(7001, "MSExchangeOWACalendarAppPool", "-1m"),
    }}}})
    job = jobs("ex01")
    assert job.run().up
    assert state_of(job) == "Started"
    assert job.values(RUNNING) == {(): 0} and job.values(STARTED) == {}


def test_pool_name_setting(jobs):
    ecp = jobs("ex01", pool_name="MSExchangeECPAppPool")
    assert ecp.run().up
    assert state_of(ecp) == "Started" and ecp.values(RUNNING) == {(): 1}
    default_pool = jobs("ex01", pool_name="DefaultAppPool")  # started, but IIS has no worker for it yet
    assert default_pool.run().up
    assert state_of(default_pool) == "Started" and default_pool.values(RUNNING) == {(): 0}


def test_a_pool_that_does_not_exist_fails_the_run_visibly(jobs):
    job = jobs("ex01", pool_name="MSExchangeOWAAppPoo")
    status = job.run()
    assert not status.up and status.error_count("command") == 1


def test_unexpected_error_from_the_process_query_is_a_command_failure(sim, jobs):
    sim.set_fault("ex01.contoso.com", "non_terminating_error", cmdlet="Get-CimInstance")
    job = jobs("ex01")
    status = job.run()
    assert not status.up and status.error_count("command") == 1
    assert jobs("ex02").run().up  # only its own job


# ---------------------------------------------------------------- the health page, over real HTTP(S)


class _HealthPage(http.server.BaseHTTPRequestHandler):
    release = threading.Event()  # set at teardown: frees a handler told to hang

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/owa/healthcheck.htm":
            body = b"<html><body>200 OK<br/>EX01.contoso.com</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/down/healthcheck.htm":
            self.send_error(503, "Service Unavailable")
        elif self.path == "/redirect/healthcheck.htm":
            self.send_response(302)
            self.send_header("Location", "/owa/auth/logon.aspx")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/hang/healthcheck.htm":
            self.release.wait(60)
        else:
            self.send_error(404)

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass


class _Server:
    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthPage)
        self.httpd.daemon_threads = True
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls_context else "http"
        self.base = f"{scheme}://localhost:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        _HealthPage.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def tls_material():
    from simulator.tls import TlsMaterial

    material = TlsMaterial(["localhost"])
    yield material
    material.remove()


@pytest.fixture
def http_page():
    _HealthPage.release.clear()
    server = _Server()
    yield server.base
    server.close()


@pytest.fixture
def https_page(tls_material):
    _HealthPage.release.clear()
    server = _Server(tls_material.server_context())
    yield server.base
    server.close()


def probe(jobs, url: str, **settings) -> Job:
    job = jobs("ex01", healthcheck_url=url, **settings)
    assert job.run().up, job.status.last_error
    assert state_of(job) == "Started" and job.values(RUNNING) == {(): 1}  # the probe changes nothing else
    return job


def health(job: Job) -> tuple[float, float]:
    return job.values(HC_UP)[()], job.values(HC_STATUS)[()]


def test_healthcheck_over_https_with_the_ca_file(jobs, https_page, tls_material):
    job = probe(jobs, https_page + "/owa/healthcheck.htm", healthcheck_ca_file=tls_material.ca_cert_path)
    assert health(job) == (1, 200)


def test_healthcheck_verifies_tls_by_default(jobs, https_page):
    job = probe(jobs, https_page + "/owa/healthcheck.htm")  # the system store does not know this CA
    assert health(job) == (0, 0)


def test_healthcheck_without_tls_verification(jobs, https_page, caplog):
    # The collector says so once (below); urllib3 would warn on every request, every run.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = probe(jobs, https_page + "/owa/healthcheck.htm", healthcheck_tls_verify=False)
        assert job.run().up
    assert [w.message for w in caught if issubclass(w.category, InsecureRequestWarning)] == []
    assert health(job) == (1, 200)
    assert sum("verification is disabled" in r.getMessage() for r in caplog.records) == 1


def test_healthcheck_over_http_statuses(jobs, http_page):
    assert health(probe(jobs, http_page + "/owa/healthcheck.htm")) == (1, 200)
    assert health(probe(jobs, http_page + "/down/healthcheck.htm")) == (0, 503)
    assert health(probe(jobs, http_page + "/redirect/healthcheck.htm")) == (0, 302)  # not followed


def test_healthcheck_nobody_listening(jobs):
    assert health(probe(jobs, f"http://127.0.0.1:{free_port()}/owa/healthcheck.htm")) == (0, 0)


def test_healthcheck_that_hangs_ends_within_the_run(jobs, http_page):
    job = probe(jobs, http_page + "/hang/healthcheck.htm", healthcheck_timeout="1s")
    assert health(job) == (0, 0)


def test_healthcheck_timeout_is_bounded_by_the_run_deadline(sim, tmp_path, http_page):
    # The run's own deadline (3 s) is shorter than the probe's timeout (15 s): the run still succeeds.
    job = Job(sim, tmp_path, OwaAppPoolCollector(), "ex01", interval="30s", timeout="3s",
              settings={"healthcheck_url": http_page + "/hang/healthcheck.htm", "healthcheck_timeout": "15s"})
    try:
        status = job.run()
        assert status.up, status.last_error
        assert health(job) == (0, 0)
    finally:
        job.close()
