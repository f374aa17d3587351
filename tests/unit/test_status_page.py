"""The status page as served: the verdict first, readable as plain text, with every server-given text
escaped and no script. (Rendered in Chromium against the running demo: tests/e2e/test_status_page.py.)"""

from __future__ import annotations

import html
import re
import time
from html.parser import HTMLParser

from exporter import status_page
from tests.verdict_estate import NOW, healthy

HOSTILE = "<script>alert(1)</script>"


def text_lines(page: str) -> list[str]:
    """The body as `curl` shows it once tags are dropped: one line per source line, blanks removed."""
    body = page.split("<body>", 1)[1]
    lines = [html.unescape(re.sub(r"<[^>]+>", " ", line)) for line in body.splitlines()]
    return [re.sub(r"\s+", " ", line).strip() for line in lines if line.strip()]


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)


def test_a_healthy_estate_answers_yes_then_lists_every_server():
    page = status_page.render(_filled(healthy()), now=NOW)
    lines = text_lines(page)
    assert lines[:2] == ["Is IM and presence in Outlook Web App working?", "Yes: OK on all 3"]
    assert "ex01 OK" in lines and "ex02 OK" in lines and "Exchange Online (through edge01) OK" in lines
    assert "What is broken, and the fix" not in lines


def test_a_broken_server_reads_as_plain_text_with_reason_since_and_fix():
    estate = healthy().set("im_certificate", "ex01", "lync_owa_im_certificate_check_ok", 0,
                           check="thumbprint_matches_certificate")
    page = status_page.render(_filled(estate), now=NOW)
    lines = text_lines(page)
    assert "No: IM in OWA is BROKEN for ex01" in lines
    assert "ex01 BROKEN im_thumbprint_matches_no_certificate" in lines
    assert "ex01: im_thumbprint_matches_no_certificate" in lines
    assert ("Check: E3 IM settings and certificate (collector im_certificate); failing: "
            "thumbprint_matches_certificate") in lines
    assert any(re.fullmatch(r"Broken since: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(for \d+ s; first seen by this "
                            r"exporter\)", line) for line in lines), lines
    fix = next(line for line in lines if line.startswith("Fix: "))
    assert "Get-ExchangeCertificate -Server ex01" in fix and 'apppool.name:"MSExchangeOWAAppPool"' in fix
    assert "<code>Get-ExchangeCertificate -Server ex01</code>" in page
    # The raw HTML reads too: the quotes of a command are not turned into entities.
    assert '/apppool.name:"MSExchangeOWAAppPool"' in page


def test_since_stays_at_the_first_sighting_across_page_loads():
    estate = _filled(healthy().set("im_log_folder", "ex02", "lync_owa_im_log_folder_present", 0))
    status_page.render(estate, now=NOW)
    later = text_lines(status_page.render(estate, now=NOW + 3 * 3600))
    assert any(line.endswith("(for 3 h 0 min; first seen by this exporter)") for line in later), later


def test_the_watcher_remembers_when_a_run_first_showed_the_cause():
    estate = healthy().set("im_log_folder", "ex02", "lync_owa_im_log_folder_present", 0)
    watcher = status_page.VerdictWatcher(estate.store)
    watcher.start()
    try:
        before = time.time()
        _filled(estate)  # the runs land in the store; the watcher judges on the change
        after = time.time()
        deadline = time.monotonic() + 10
        while not watcher.first_seen.known() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
    [(cause, since)] = watcher.first_seen.known().items()
    assert (cause.reason, cause.target) == ("im_log_folder_missing", "ex02")
    assert before <= since <= after + 10
    page = status_page.render(estate.store, now=since + 3600)  # an hour later, the first page view
    assert f"Broken since: {status_page._when(since)} (for 60 min; first seen by this exporter)" in text_lines(page)


def test_texts_from_servers_are_escaped_and_there_is_no_script():
    estate = healthy().fail("owa_app_pool", "ex01", "command", HOSTILE)
    estate.set("owa_events", "ex02", "lync_owa_im_initialisation_last_failure_timestamp_seconds", NOW, reason=HOSTILE)
    page = status_page.render(_filled(estate), now=NOW)
    assert HOSTILE not in page and "<script" not in page
    assert html.escape(HOSTILE) in page
    lines = text_lines(page)
    assert f"ex01 UNKNOWN not checked: owa_app_pool (command: {HOSTILE})" in lines
    assert f"Check: E1 Event 112 (collector owa_events); failing: failure {HOSTILE}" in lines
    parser = Tags()
    parser.feed(page)
    assert "script" not in parser.tags


def test_maintenance_is_said_in_words_and_its_findings_are_marked_not_paged():
    estate = healthy().set("owa_app_pool", "ex01", "lync_owa_app_pool_state", 0, state="Started")
    estate.set("server_maintenance", "ex01", "lync_owa_server_in_maintenance", 1)
    estate.set("server_maintenance", "ex01", "lync_owa_server_maintenance_state", 1,
               kind="exchange_component", component="ServerWideOffline", state="Inactive")
    lines = text_lines(status_page.render(_filled(estate), now=NOW))
    assert "ex01 MAINTENANCE in maintenance: exchange_component ServerWideOffline Inactive" in lines
    assert "ex01: owa_app_pool_not_started (in maintenance: not paged)" in lines
    assert lines[1] == "Yes: OK on 2 of 3; in maintenance: ex01"


def test_collector_health_follows_the_verdict():
    lines = text_lines(status_page.render(_filled(healthy().fail("lync_topology", "fe01", "auth", "denied")), now=NOW))
    assert lines.index("Collector health") > lines.index("Per OWA server")
    assert "lync_topology fe01 failing (auth) never 0.100s denied" in lines
    assert "fe01: lync_topology (auth: denied)" in lines  # named: the organisation-wide checks are blind


def _filled(estate):
    estate.readings()  # records every job's outcome in the estate's store
    return estate.store
