"""Every check whose failure breaks IM in OWA (the verdict table of docs/checks.md) feeds the verdict
(lync_owa:im_integration_broken in alerts/lync-owa.rules.yml), and the verdict has no cause the table
does not explain; the alert carries a fix for each."""

from __future__ import annotations

import re

import yaml

from tests.conftest import PROJECT_ROOT

CHECKS = PROJECT_ROOT / "docs" / "checks.md"
RULES = PROJECT_ROOT / "alerts" / "lync-owa.rules.yml"
VERDICT = "lync_owa:im_integration_broken"


def _table_rows() -> list[list[str]]:
    text = CHECKS.read_text()
    section = text.split("## The verdict: which failures break IM in OWA, and where", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]  # without the header


def _rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _verdict_reasons() -> set[str]:
    return {rule["labels"]["reason"] for rule in _rules() if rule.get("record") == VERDICT}


def test_every_check_that_breaks_im_feeds_the_verdict():
    rows = _table_rows()
    assert len(rows) >= 15
    documented: set[str] = set()
    for check, breaks, _where, reasons in rows:
        named = set(re.findall(r"`([a-z0-9_]+)`", reasons))
        if breaks.startswith("yes"):
            assert named, f"{check}: breaks IM but names no verdict reason"
        else:
            assert breaks.startswith("no") and not named, f"{check}: not in the verdict, yet names {named}"
        documented |= named
    assert documented == _verdict_reasons()


def test_the_page_explains_every_reason():
    alert = next(rule for rule in _rules() if rule.get("alert") == "LyncOwaIMIntegrationBroken")
    assert alert["expr"].strip() == f"{VERDICT} == 1"
    description = alert["annotations"]["description"]
    generic_fix = "Fix the setting: Exchange 2013:"  # the E1-E3 settings fix, shown unless a reason has its own
    excluded = re.search(r'match "\^\(([^)]*)\)\$"', description).group(1).split("|")
    for reason in _verdict_reasons():
        own = f'eq $labels.reason "{reason}"' in description
        takes_generic = not any(re.fullmatch(pattern, reason) for pattern in excluded)
        assert own or takes_generic, f"{reason}: the page gives no fix"
        assert own or generic_fix in description


def test_specific_alerts_of_a_verdict_cause_are_muted_by_it():
    am = yaml.safe_load((PROJECT_ROOT / "alerts" / "alertmanager.example.yml").read_text())
    muted = {}
    for rule in am["inhibit_rules"]:
        source = " ".join(rule["source_matchers"])
        found = re.search(r'reason="([a-z_]+)"', source)
        if 'alertname="LyncOwaIMIntegrationBroken"' in source and found:
            assert rule["equal"] == ["job", "instance", "target"]
            muted[found.group(1)] = rule["target_matchers"]
    assert muted.keys() == {"owa_app_pool_not_started", "edge_hosting_provider_missing",
                            "edge_hosting_provider_misconfigured", "edge_federation_disabled"}
    assert muted["owa_app_pool_not_started"] == ['alertname="LyncOwaOWAAppPoolNotStarted"']
