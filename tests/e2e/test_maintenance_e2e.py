"""A server in maintenance pages no one, and pages again when it leaves maintenance still broken.

The real path (tests/e2e/alerting_stack.py): demo -> Prometheus with alerts/*.rules.yml -> Alertmanager
with alerts/alertmanager.example.yml -> webhook. The story is the documented trap of an Exchange
update: ex01 goes into maintenance mode (ServerWideOffline Inactive), the update breaks IM in OWA
there (here: the IM certificate thumbprint in web.config names no installed certificate, as in
`thumbprint-drift`), and nobody is paged while the administrator works. The moment ex01 leaves
maintenance with IM still broken, the page arrives.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.e2e.alerting_stack import SCRAPE_INTERVAL, AlertingStack
from tests.e2e.test_alerting_e2e import SETTLE_SECONDS

pytestmark = pytest.mark.e2e

PAGE_TIMEOUT = 90.0
BROKEN = "LyncOwaIMIntegrationBroken"
MAINTENANCE = "LyncOwaServerInMaintenance"


@pytest.fixture(scope="module")
def stack():
    running = AlertingStack().start()
    try:
        running.wait_for_collectors_up()
        yield running
    finally:
        running.stop()


def broken_in_maintenance(tmp_path: Path) -> str:
    """thumbprint-drift with ex01 in maintenance mode: IM broken there, on purpose out of service."""
    path = tmp_path / "thumbprint-drift-in-maintenance.yaml"
    path.write_text(yaml.safe_dump({
        "base": "thumbprint-drift",
        "description": "thumbprint-drift while ex01 is in maintenance mode",
        "hosts": {"ex01.contoso.com": {"exchange": {"component_states": {
            "ServerWideOffline": {"state": "Inactive", "requester": "Maintenance", "since": "-10m"}}}}},
    }))
    return str(path)


def alertmanager_alerts(stack: AlertingStack) -> list[dict]:
    with urllib.request.urlopen(f"{stack.alertmanager_url}/api/v2/alerts", timeout=5) as response:
        return json.load(response)


def wait_for(what: str, check, timeout: float = PAGE_TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.5)


def in_alertmanager(stack: AlertingStack, name: str, target: str, state: str) -> bool:
    return any(a["labels"].get("alertname") == name and a["labels"].get("target") == target
               and a["status"]["state"] == state for a in alertmanager_alerts(stack))


def firing_in_prometheus(stack: AlertingStack, name: str, target: str) -> bool:
    return bool(stack.query(f'ALERTS{{alertname="{name}", alertstate="firing", target="{target}"}}'))


def is_page(name: str, target: str):
    return lambda n, a: (n.status == "firing" and a["status"] == "firing"
                         and a["labels"].get("alertname") == name and a["labels"].get("target") == target)


def test_maintenance_mutes_the_page_and_leaving_it_unmutes(stack, tmp_path):
    # 1. ex01 goes into maintenance mode: the info alert reaches Alertmanager, routed nowhere.
    stack.set_scenario("exchange-maintenance")
    wait_for("ex01's maintenance alert active in Alertmanager", lambda: in_alertmanager(stack, MAINTENANCE, "ex01", "active"))

    # 2. The update breaks IM on ex01: Prometheus fires the page, Alertmanager holds it muted.
    broken_at = time.monotonic()
    stack.set_scenario(broken_in_maintenance(tmp_path))
    wait_for("IM broken on ex01 firing in Prometheus", lambda: firing_in_prometheus(stack, BROKEN, "ex01"))
    wait_for("the page muted in Alertmanager", lambda: in_alertmanager(stack, BROKEN, "ex01", "suppressed"))
    (muted,) = [a for a in alertmanager_alerts(stack)
                if a["labels"].get("alertname") == BROKEN and a["labels"].get("target") == "ex01"]
    assert muted["status"]["inhibitedBy"], muted["status"]
    time.sleep(SETTLE_SECONDS)  # Alertmanager's group_wait and group_interval are a second in this stack
    assert stack.webhook.alerts(since=broken_at) == [], "a notification left while ex01 was in maintenance"
    assert in_alertmanager(stack, BROKEN, "ex01", "suppressed")

    # 3. ex01 leaves maintenance with IM still broken: the page arrives at the pager.
    left_at = time.monotonic()
    stack.set_scenario("thumbprint-drift")
    found = stack.webhook.wait_for(is_page(BROKEN, "ex01"), since=left_at, timeout=PAGE_TIMEOUT)
    assert found is not None, f"no page for ex01 within {PAGE_TIMEOUT:.0f}s of leaving maintenance"
    notification, alert = found
    assert notification.receiver == "lync-owa-pager"
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["reason"] == "im_thumbprint_matches_no_certificate"
    assert not firing_in_prometheus(stack, MAINTENANCE, "ex01")
    # Nothing else was sent: the maintenance alert itself is routed nowhere.
    names = {a["labels"]["alertname"] for _, a in stack.webhook.alerts(since=broken_at)}
    assert names == {BROKEN}, names
    print(f"\n  page after leaving maintenance: {notification.received_at - left_at:.1f}s "
          f"(scrape {SCRAPE_INTERVAL})")

    # 4. Healed: the page resolves.
    healed_at = time.monotonic()
    stack.set_scenario("healthy")
    resolved = stack.webhook.wait_for(
        lambda n, a: a["status"] == "resolved" and a["labels"].get("alertname") == BROKEN
        and a["labels"].get("target") == "ex01", since=healed_at, timeout=PAGE_TIMEOUT)
    assert resolved is not None, "the page did not resolve after healing"


def test_a_drained_front_end_does_not_mute_the_exchange_servers_pages(stack, tmp_path):
    """Maintenance mutes its own target only: fe01 drained while IM breaks on ex01 -> ex01 pages."""
    wait_for("a quiet estate", lambda: not stack.query("ALERTS"))
    stack.set_scenario("frontend-drained")
    wait_for("fe01's maintenance alert active", lambda: in_alertmanager(stack, MAINTENANCE, "fe01", "active"))
    overlay = tmp_path / "thumbprint-drift-fe01-drained.yaml"
    overlay.write_text(yaml.safe_dump({
        "base": "thumbprint-drift", "description": "thumbprint-drift while fe01 is drained",
        "hosts": {"fe01.contoso.com": {"lync": {"windows_services": {"RTCSRV": {"status": "Paused"}}}}}}))
    broken_at = time.monotonic()
    stack.set_scenario(str(overlay))
    found = stack.webhook.wait_for(is_page(BROKEN, "ex01"), since=broken_at, timeout=PAGE_TIMEOUT)
    assert found is not None, "ex01's page was muted by fe01's maintenance"
    assert found[0].receiver == "lync-owa-pager"
    assert firing_in_prometheus(stack, MAINTENANCE, "fe01")
    healed_at = time.monotonic()
    stack.set_scenario("healthy")
    assert stack.webhook.wait_for(
        lambda n, a: a["status"] == "resolved" and a["labels"].get("alertname") == BROKEN,
        since=healed_at, timeout=PAGE_TIMEOUT) is not None
