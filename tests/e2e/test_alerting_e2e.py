"""End to end with the real programs: a broken scenario pages, the healthy estate does not.

The demo (simulated estate + exporter) is scraped by a real Prometheus loading alerts/*.rules.yml,
which sends to a real Alertmanager routed by alerts/alertmanager.example.yml, which posts to a webhook
inside the test. Each scenario is switched live on the running simulator; the test waits for the
page (the expected alert, with the server and reason labels and a runbook URL, at the receiver its
severity routes to), switches back, and waits for the resolved notification. The time from breaking
to page is printed; the figure belongs to docs/performance.md, not to a pass/fail threshold.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest

from simulator.scenario import scenario_names
from tests.conftest import PROJECT_ROOT
from tests.e2e.alerting_stack import (
    COLLECTOR_INTERVAL,
    FOR_SECONDS,
    SCRAPE_INTERVAL,
    AlertingStack,
)

pytestmark = pytest.mark.e2e

# As shipped, runbook_url is the runbook's path in this repository (alerts/README.md shows how to rewrite it).
RUNBOOK_BASE = "docs/runbooks/"
SEVERITY_RECEIVER = {"critical": "lync-owa-pager", "warning": "lync-owa-ticket"}
PAGE_TIMEOUT = 90.0
DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"

# scenario -> the alerts it must raise: (alertname, labels the alert must carry with these values).
def _broken(target: str, reason: str) -> tuple[str, dict[str, str]]:
    return "LyncOwaIMIntegrationBroken", {"target": target, "reason": reason, "severity": "critical"}


def _exchange_online(reason: str) -> tuple[str, dict[str, str]]:
    return "LyncOwaIMIntegrationBroken", {"target": "edge01", "reason": reason, "mailboxes": "exchange_online",
                                          "severity": "critical"}


def _config_check(target: str, check: str) -> tuple[str, dict[str, str]]:
    return "LyncOwaConfigCheckFailing", {"target": target, "check": check, "severity": "warning"}


def _expiring(target: str, source: str) -> tuple[str, dict[str, str]]:
    return "LyncOwaCertificateExpiring", {"target": target, "source": source, "severity": "critical"}


# scenario -> the alerts it must raise: (alertname, labels the alert must carry with these values).
# No other alert name may reach the webhook while the scenario is on.
EXPECTED_PAGES: dict[str, list[tuple[str, dict[str, str]]]] = {
    "no-event-112": [_broken("ex01", "no_event_112_since_pool_start")],
    "im-log-missing": [_broken("ex01", "im_log_folder_missing")],
    "thumbprint-drift": [_broken("ex01", "im_thumbprint_matches_no_certificate")],
    "thumbprint-malformed": [_broken("ex01", "im_thumbprint_malformed")],
    "ucma-missing": [_broken("ex01", "ucma_runtime_missing"),
                     ("LyncOwaIMIntegrationBroken", {"target": "ex01", "reason": "im_initialisation_failing",
                                                     "failure": "ucma_missing"})],
    # The verdict pages; LyncOwaOWAAppPoolNotStarted fires too and Alertmanager mutes it (one page per cause).
    "apppool-stopped": [_broken("ex01", "owa_app_pool_not_started")],
    "cert-expiring": [_expiring("ex01", "exchange"), _expiring("ex01", "tls"), _expiring("fe01", "lync"),
                      _expiring("fe01", "tls")],
    # A certificate the integration does not use: a ticket, never a page.
    "unused-cert-expiring": [("LyncOwaUnusedCertificateExpiring", {"target": "ex02", "source": "exchange",
                                                                   "severity": "warning"})],
    "cms-replica-stale": [
        ("LyncOwaCMSReplicaNotUpToDate", {"replica": "edge01.contoso.com", "severity": "warning"}),
        ("LyncOwaCMSReplicaSilent", {"replica": "edge01.contoso.com", "severity": "warning"}),
    ],
    # Hybrid (the CMS holds the Exchange Online provider): mailboxes in Exchange Online, under the Edge.
    "edge-provider-missing": [_exchange_online("edge_hosting_provider_missing")],
    # A default route leaves no room for the Exchange Online hosting provider (hybrid only).
    "edge-default-routing": [_exchange_online("edge_federation_default_route")],
    "edge-provider-drift": [
        ("LyncOwaEdgeHostingProviderDrift", {"target": "edge01", "field": "enabled_shared_address_space"}),
        _exchange_online("edge_hosting_provider_misconfigured"),
    ],
    "owa-im-disabled": [_broken("ex02", "owa_virtual_directory_im_disabled")],
    # Organisation-wide causes break every OWA server.
    "owa-policy-im-disabled": [_broken("ex01", "owa_mailbox_policy_im_disabled"),
                               _broken("ex02", "owa_mailbox_policy_im_disabled")],
    "owa-trusted-app-missing": [_broken("ex01", "owa_trusted_application_missing"),
                                _broken("ex02", "owa_trusted_application_missing")],
    "trusted-pool-duplicates-um": [_broken("ex01", "trusted_pool_duplicates_um_server"),
                                   _broken("ex02", "trusted_pool_duplicates_um_server")],
    "trusted-pool-wrong-registrar": [_broken("ex01", "owa_trusted_pool_registrar_not_the_lync_pool"),
                                     _broken("ex02", "owa_trusted_pool_registrar_not_the_lync_pool")],
    "im-cert-lacks-trusted-pool": [_broken("ex01", "im_certificate_lacks_trusted_pool_name")],
    # OWA's IM endpoint: nothing answers on the OWA trusted application's port; what answers chains to a
    # root no front end's chain ends at; on 2019 the IM setting override is not loaded.
    "owa-im-port-not-listening": [_broken("ex01", "owa_trusted_application_port_not_answering")],
    "im-cert-untrusted-root": [_broken("ex01", "im_certificate_not_trusted_by_lync")],
    "im-override-not-refreshed": [_broken("ex02", "im_setting_override_not_in_effect")],
    # Refreshed but not recycled: ex02's OWA worker predates the override's last change.
    "override-not-recycled": [_broken("ex02", "owa_app_pool_not_recycled_after_im_override")],
    # 001 advises the server's own FQDN in the IM certificate; the trusted pool's name is the one that pages.
    "im-cert-lacks-server-name": [_config_check("ex02", "im_certificate_names_server")],
    # UM autodiscovery covers ex01 (Exchange 2013, both roles); nothing covers ex02 (Exchange 2019, no UM).
    "owa-server-unknown-to-lync": [_broken("ex02", "owa_server_not_known_to_lync")],
    # An unsupported version pair (Lync Server 2013 with Exchange 2019) is a ticket: Microsoft says
    # unsupported, not broken.
    "lync-2013-with-exchange-2019": [_config_check("ex02", "exchange_lync_versions_supported")],
    # A non-default OWA policy with IM off governs 42 mailboxes: those users lose IM, no server does.
    # Every client access server counts it (the policies are organisation-wide): a ticket from each.
    "owa-policy-im-off-assigned": [_config_check(ex, "owa_mailbox_policies_im_off_unassigned")
                                   for ex in ("ex01", "ex02")],
    # A misconfiguration (001 recommends against IM on the back end), not broken IM: a ticket.
    "owa-backend-im-enabled": [_config_check("ex01", "owa_backend_vdir_im_not_enabled")],
    "trusted-pool-settings-drift": [_config_check("fe01", check) for check in (
        "owa_trusted_pool_requires_no_replication", "owa_trusted_pool_throttles_as_server",
        "owa_trusted_pool_treated_as_authenticated")],
    "oauth-autodiscover-xml": [_config_check("fe01", "oauth_autodiscover_url_svc")],
    "autodiscover-uri-missing": [_config_check("ex02", "autodiscover_internal_uri_set")],
    "oauth-cert-mismatch": [("LyncOwaOAuthCertificateInconsistent", {"severity": "warning"})],
    # A weak OAuth key is a ticket per front end: OAuth serves server-to-server features, not IM in OWA.
    "oauth-cert-weak-key": [_config_check(fe, "lync_oauth_certificate_key_size") for fe in ("fe01", "fe02")],
    # Maintenance, not outages: nothing may page. Only the info alert LyncOwaServerInMaintenance fires
    # (routed nowhere), for the server IN_MAINTENANCE names.
    "exchange-maintenance": [],
    "frontend-drained": [],
}
IN_MAINTENANCE = {"exchange-maintenance": "ex01", "frontend-drained": "fe01"}
# Long enough for any rule to go through pending into firing and reach Alertmanager.
SETTLE_SECONDS = FOR_SECONDS + 6 * float(SCRAPE_INTERVAL.rstrip("s")) + 2

TIMES_TO_PAGE: dict[str, float] = {}


@pytest.fixture(scope="module")
def stack():
    running = AlertingStack().start()
    try:
        running.wait_for_collectors_up()
        yield running
    finally:
        running.stop()


def _matches(alert: dict, name: str, labels: dict[str, str]) -> bool:
    return alert["labels"].get("alertname") == name and all(alert["labels"].get(k) == v for k, v in labels.items())


def _started_after(alert: dict, wall: float) -> bool:
    """The alert became active after `wall`, give or take the second that separates Prometheus'
    evaluation clock from this test's. startsAt is RFC 3339 with up to nanoseconds (Alertmanager's
    webhook payload); the fraction is cut to microseconds for datetime."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", alert["startsAt"]).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp() >= wall - 1.0


def _wait_quiet(stack: AlertingStack, timeout: float = 60.0) -> None:
    """Until Prometheus holds no alert, firing or pending, and Alertmanager none either: a previous
    scenario's alerts have resolved, none of its checks is still on its way to firing (a pending one would
    page during the next scenario), and no muted one can still be notified."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not stack.firing_alerts() and not stack.query("ALERTS") and not stack.alertmanager_alerts():
            return
        time.sleep(0.5)
    pytest.fail(f"alerts still firing after {timeout:.0f}s on the healthy estate: "
                f"{[a['labels'] for a in stack.firing_alerts()]}; in Alertmanager: "
                f"{[a['labels'] for a in stack.alertmanager_alerts()]}")


def test_every_shipped_broken_scenario_is_exercised():
    assert set(scenario_names()) - {"healthy"} == set(EXPECTED_PAGES)


def _assert_nothing_pages(stack: AlertingStack, scenario: str, since: float, since_wall: float) -> None:
    """A scenario expecting no page: once its effect shows (the server it puts in maintenance fires
    LyncOwaServerInMaintenance), every rule gets time to fire, and no notification of an alert that
    started after the scenario was set may arrive. One of the previous scenario's may: an alert muted by
    the verdict's page (an inhibition) is notified once when the page resolves a moment before it does."""
    target = IN_MAINTENANCE.get(scenario)
    if target is not None:
        query = f'ALERTS{{alertname="LyncOwaServerInMaintenance", alertstate="firing", target="{target}"}}'
        end = time.monotonic() + PAGE_TIMEOUT
        while not stack.query(query):
            if time.monotonic() > end:
                pytest.fail(f"{scenario}: {target} not in maintenance within {PAGE_TIMEOUT:.0f}s; firing: "
                            f"{[a['labels'] for a in stack.firing_alerts()]}")
            time.sleep(0.5)
    time.sleep(SETTLE_SECONDS)
    notified = [a["labels"] for _, a in stack.webhook.alerts(since=since) if _started_after(a, since_wall)]
    assert notified == [], f"{scenario} paged or opened a ticket: {notified}"
    firing = [a["labels"] for a in stack.firing_alerts()]
    assert all(labels["severity"] == "info" for labels in firing), f"{scenario}: {firing}"
    if target is not None:
        assert [(a["alertname"], a["target"]) for a in firing] == [("LyncOwaServerInMaintenance", target)]


def test_healthy_estate_pages_no_one(stack):
    started = time.monotonic()
    # Enough evaluations for any rule to have gone through pending into firing and to Alertmanager.
    time.sleep(FOR_SECONDS + 6 * float(SCRAPE_INTERVAL.rstrip("s")) + 2)
    assert stack.firing_alerts() == [], [a["labels"] for a in stack.firing_alerts()]
    assert stack.webhook.alerts(since=0) == [], "a notification reached the webhook on the healthy estate"
    assert stack.query("ALERTS") == [], "an alert is pending or firing on the healthy estate"
    assert time.monotonic() - started > FOR_SECONDS


@pytest.mark.parametrize("scenario", sorted(EXPECTED_PAGES))
def test_broken_scenario_pages_then_resolves(stack, scenario, capsys):
    _wait_quiet(stack)
    expected = EXPECTED_PAGES[scenario]
    broken_at = time.monotonic()
    broken_wall = time.time()
    stack.set_scenario(scenario)
    try:
        pages = []
        if not expected:
            _assert_nothing_pages(stack, scenario, broken_at, broken_wall)
        for name, labels in expected:
            found = stack.webhook.wait_for(
                lambda n, a, name=name, labels=labels: n.status == "firing" and a["status"] == "firing"
                and _matches(a, name, labels), since=broken_at, timeout=PAGE_TIMEOUT)
            assert found is not None, (f"{scenario}: no page {name} {labels} within {PAGE_TIMEOUT:.0f}s; firing in "
                                       f"Prometheus: {[a['labels'] for a in stack.firing_alerts()]}")
            notification, alert = found
            severity = alert["labels"]["severity"]
            assert notification.receiver == SEVERITY_RECEIVER[severity], (name, notification.receiver)
            assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}{name}.md"
            assert alert["annotations"].get("summary") and alert["annotations"].get("description")
            pages.append((name, notification.received_at - broken_at))
        if pages:
            TIMES_TO_PAGE[scenario] = max(seconds for _, seconds in pages)
        # Only what this scenario raised: a notification that arrives now for an alert of the previous
        # scenario (Alertmanager resending its group with every alert resolved) is not a page.
        unexpected = {a["labels"]["alertname"] for _, a in stack.webhook.alerts(since=broken_at)
                      if a["status"] == "firing" and _started_after(a, broken_wall)} - {n for n, _ in expected}
        assert not unexpected, (f"{scenario} also paged {sorted(unexpected)}: "
                                f"{[(a['labels'], a['status'], a['startsAt']) for _, a in stack.webhook.alerts(since=broken_at)]}")
        with capsys.disabled():
            for name, seconds in pages:
                print(f"\n  time to page: {scenario} -> {name}: {seconds:.1f}s "
                      f"(for: {FOR_SECONDS}s, scrape {SCRAPE_INTERVAL}, collector interval {COLLECTOR_INTERVAL})")
    finally:
        healed_at = time.monotonic()
        stack.set_scenario("healthy")
    for name, labels in expected:
        resolved = stack.webhook.wait_for(
            lambda n, a, name=name, labels=labels: a["status"] == "resolved" and _matches(a, name, labels),
            since=healed_at, timeout=PAGE_TIMEOUT)
        assert resolved is not None, f"{scenario}: {name} not resolved within {PAGE_TIMEOUT:.0f}s of healing"


def _dashboard_queries() -> list[tuple[str, str, str]]:
    queries = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((path.name, panel["title"], target["expr"]))
    return queries


def _fill_variables(expr: str) -> str:
    expr = expr.replace("$job", "lync-owa").replace("$instance", ".+")
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "1h")
    assert "$" not in expr, f"unknown dashboard variable in {expr}"
    return expr


def test_every_dashboard_query_returns_data(stack):
    """With IM broken on one server, so that the "why" panels have something to show too."""
    _wait_quiet(stack)
    queries = _dashboard_queries()
    assert queries, "no dashboards found"
    stack.set_scenario("no-event-112")
    try:
        end = time.monotonic() + PAGE_TIMEOUT
        while not stack.query("lync_owa:im_integration_broken") and time.monotonic() < end:
            time.sleep(0.5)
        empty = [(file, title, expr) for file, title, expr in queries if not stack.query(_fill_variables(expr))]
    finally:
        stack.set_scenario("healthy")
    assert not empty, "panel queries that return nothing from Prometheus scraping the demo:\n" + "\n".join(
        f"  {file} / {title}: {expr}" for file, title, expr in empty)
