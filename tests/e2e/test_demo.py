"""The README's demo command, as a user runs it: a real process, a real scrape, real promtool."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PROJECT_ROOT, free_port
from tests.loopback_guard import guarded_environment

pytestmark = pytest.mark.e2e

READY_WITHIN_SECONDS = 15  # the promise the README's demo command makes


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The demo runs under the loopback guard too: it must never resolve a name or connect off this machine.
    guard_report = tmp_path_factory.mktemp("demo-guard") / "refused.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "demo", "--web.listen-address", f"127.0.0.1:{port}",
         "--simulator.listen", "127.0.0.1:0"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=guarded_environment(guard_report, PROJECT_ROOT),
    )
    started = time.monotonic()
    text = ""
    while time.monotonic() - started < READY_WITHIN_SECONDS:
        if process.poll() is not None:
            pytest.fail(f"demo exited early with {process.returncode}: {process.stdout.read()}")
        try:
            text = _scrape(url + "/metrics")
        except OSError:
            time.sleep(0.2)
            continue
        if _ready(text):
            break
        time.sleep(0.2)
    ready_after = time.monotonic() - started
    print(f"demo served a complete scrape after {ready_after:.1f}s")
    yield url, text, ready_after
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("demo did not stop within 20 s of SIGINT")
    assert process.returncode == 0, process.stdout.read()
    report = guard_report.read_text().splitlines()
    assert any(line.startswith("installed:") for line in report), "the loopback guard was not installed in the demo"
    assert [line for line in report if line.startswith("refused:")] == [], "the demo sent traffic beyond loopback"


def _ready(text: str) -> bool:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    up = families.get("lync_owa_collector_up")
    replicas = families.get("lync_owa_cms_replica_up_to_date")
    if up is None or replicas is None:
        return False
    # Every job has succeeded once: the healthy estate raises no failure, and every series is there.
    return (bool(up.samples) and all(s.value == 1 for s in up.samples)
            and len({s.labels["replica"] for s in replicas.samples}) >= 2)


def test_demo_serves_replicas_and_healthy_jobs_in_time(demo):
    _, text, ready_after = demo
    assert _ready(text), f"not ready after {ready_after:.1f}s:\n{text[:2000]}"


@pytest.mark.skipif(shutil.which("promtool") is None and not __import__("os").environ.get("CI"),
                    reason="promtool not installed (scripts/test installs Debian's prometheus package)")
def test_promtool_check_metrics_prints_nothing(demo):
    url, _, _ = demo
    body = _scrape(url + "/metrics")
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
    assert result.stdout + result.stderr == "", result.stdout + result.stderr
    assert result.returncode == 0


def _documented_metrics() -> dict[str, set[str]]:
    """The metric tables of docs/metrics.md: name -> set of label names."""
    documented: dict[str, set[str]] = {}
    for line in (PROJECT_ROOT / "docs" / "metrics.md").read_text().splitlines():
        match = re.match(r"^\|\s*`(lync_owa_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", line)
        if match:
            documented[match.group(1)] = set(re.findall(r"`([a-z_]+)`", match.group(3)))
    return documented


# Documented series a healthy demo must not serve: the demo reads event logs remotely, and the time of
# something never seen is absent (docs/metrics.md, "Never seen").
NOT_SERVED_BY_A_HEALTHY_DEMO = {
    "lync_owa_evtx_records_skipped_total",  # the evtx_* series exist with source: files only
    "lync_owa_evtx_chunks_skipped_total",
    "lync_owa_evtx_other_computer_events_total",
    "lync_owa_evtx_files_unreadable",
    "lync_owa_im_initialisation_last_failure_timestamp_seconds",  # no IM initialisation failure in the log
    "lync_owa_mailbox_policy_im_off_mailboxes",  # only policies with IM off are counted; the healthy demo has none
    "lync_owa_mailbox_policy_im_off_mailboxes_capped",
}


def test_docs_metrics_match_a_real_scrape(demo):
    url, _, _ = demo
    scraped: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(_scrape(url + "/metrics")):
        for sample in family.samples:
            if not sample.name.startswith("lync_owa_") or sample.name.endswith("_created"):
                continue
            scraped.setdefault(sample.name, set()).update(sample.labels)
    documented = _documented_metrics()
    assert set(scraped) - set(documented) == set(), "served but not documented in docs/metrics.md"
    assert NOT_SERVED_BY_A_HEALTHY_DEMO <= set(documented)
    assert NOT_SERVED_BY_A_HEALTHY_DEMO & set(scraped) == set(), "served by a healthy, remote-only demo"
    assert set(documented) - set(scraped) == NOT_SERVED_BY_A_HEALTHY_DEMO, "documented but not served by the demo"
    for name, labels in scraped.items():
        assert labels == documented[name], f"{name}: served labels {labels}, documented {documented[name]}"


def test_landing_page_and_health(demo):
    url, _, _ = demo
    page = _scrape(url + "/")
    assert "/metrics" in page and "cms_replication" in page and "fe01" in page
    assert _scrape(url + "/healthz").strip() == "ok"
