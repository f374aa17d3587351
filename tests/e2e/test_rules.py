"""The alerting rules, their promtool tests, their runbooks and the example Alertmanager configuration.

Runs the real binaries: promtool (Debian package `prometheus`), amtool and the Alertmanager
(`prometheus-alertmanager`). Without them the tests skip, except under CI (the environment variable
CI set), where a missing binary is a failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, free_port
from tests.e2e.alerting_stack import binary

pytestmark = pytest.mark.e2e

ALERTS_DIR = PROJECT_ROOT / "alerts"
RULE_FILES = sorted(ALERTS_DIR.glob("*.rules.yml"))
TEST_FILES = sorted((ALERTS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_EXAMPLE = ALERTS_DIR / "alertmanager.example.yml"
PROMETHEUS_EXAMPLE = ALERTS_DIR / "prometheus.example.yml"
RUNBOOKS_DIR = PROJECT_ROOT / "docs" / "runbooks"
METRICS_DOC = PROJECT_ROOT / "docs" / "metrics.md"

ALERTS_README = ALERTS_DIR / "README.md"
# Where runbook_url points as shipped: the runbooks' path in this repository. alerts/README.md shows
# the one command that rewrites it to an operator's own base; the checks below accept any one base.
SHIPPED_RUNBOOK_BASE = "docs/runbooks/"

SEVERITY_RECEIVER = {"critical": "lync-owa-pager", "warning": "lync-owa-ticket", "info": "blackhole"}
RUNBOOK_SECTIONS = ("## What it means", "## Confirm", "## Fix", "## Verify")
# Series of the exporter that are not domain data: alerts on these need no `collector` label.
HEALTH_METRIC = re.compile(r"^(up|lync_owa_collector_\w+|lync_owa_build_info|lync_owa_config_last_reload_\w+)$")
METRIC_TOKEN = re.compile(r"\b(lync_owa_[a-z0-9_]+|lync_owa:[a-z0-9_:]+)\b")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)


def _rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append({**rule, "_file": path.name, "_group": group["name"]})
    return rules


def _alerts() -> list[dict]:
    return [rule for rule in _rules() if "alert" in rule]


def _alert_names() -> list[str]:
    return [rule["alert"] for rule in _alerts()]


# --------------------------------------------------------------------------------------------------
# promtool
# --------------------------------------------------------------------------------------------------


def test_alerts_directory_holds_only_known_files():
    """A rule file not named *.rules.yml would escape `promtool check rules` below."""
    assert RULE_FILES, "no alerts/*.rules.yml"
    assert TEST_FILES, "no alerts/tests/*.yml"
    known = set(RULE_FILES) | {ALERTMANAGER_EXAMPLE, PROMETHEUS_EXAMPLE}
    stray = sorted(p.name for p in ALERTS_DIR.glob("*.y*ml") if p not in known)
    assert stray == [], f"unexpected YAML in alerts/ (rule files must be named *.rules.yml): {stray}"


def test_promtool_check_rules():
    promtool = binary("promtool")
    result = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("SUCCESS") == len(RULE_FILES), output
    assert "FAILED" not in output and "WARNING" not in output.upper(), output


def test_promtool_test_rules():
    promtool = binary("promtool")
    result = _run(promtool, "test", "rules", *map(str, TEST_FILES))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("SUCCESS") == len(TEST_FILES), output
    assert "FAILED" not in output, output


def test_prometheus_example_config_is_valid():
    promtool = binary("promtool")
    result = _run(promtool, "check", "config", str(PROMETHEUS_EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------------
# Rule conventions (design.md, "Alerts and dashboards")
# --------------------------------------------------------------------------------------------------


def test_every_alert_follows_the_conventions():
    alerts = _alerts()
    assert alerts, "no alerts found"
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"
    problems = []
    for alert in alerts:
        name = alert["alert"]
        labels = alert.get("labels", {})
        annotations = alert.get("annotations", {})
        if not re.fullmatch(r"LyncOwa(?:[A-Z][a-z0-9]*|[A-Z]+(?=[A-Z][a-z]|$))+", name):
            problems.append(f"{name}: not CamelCase with the prefix LyncOwa")
        if labels.get("severity") not in SEVERITY_RECEIVER:
            problems.append(f"{name}: severity {labels.get('severity')!r} not in {sorted(SEVERITY_RECEIVER)}")
        for key in ("summary", "description", "runbook_url"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: annotation {key} missing or empty")
        description = str(annotations.get("description", ""))
        if "{{" not in description:
            problems.append(f"{name}: description shows no failing value (no templating)")
        if "`" not in description:
            problems.append(f"{name}: description names no command (`...`) to run")
        url = str(annotations.get("runbook_url", ""))
        if not url.endswith("/" + name + ".md") and url != name + ".md":
            problems.append(f"{name}: runbook_url {url!r} does not end in {name + '.md'!r}")
        elif not _is_url(url) and not (PROJECT_ROOT / url).is_file():
            problems.append(f"{name}: runbook_url {url!r} names no file in the repository")
        if not alert.get("for"):
            problems.append(f"{name}: no `for:`; one bad evaluation would notify")
    bases = {str(a.get("annotations", {}).get("runbook_url", "")).removesuffix(a["alert"] + ".md") for a in alerts}
    if len(bases) != 1:
        problems.append(f"runbook_url: the alerts do not share one base: {sorted(bases)}")
    assert problems == [], "\n".join(problems)


def _is_url(text: str) -> bool:
    return re.match(r"[a-z][a-z0-9+.-]*://", text) is not None


def _readme_sed_command() -> str:
    """The one command alerts/README.md gives for rewriting runbook_url."""
    blocks = re.findall(r"```sh\n(.*?)```", ALERTS_README.read_text(), re.S)
    commands = [b.strip() for b in blocks if "runbook_url" in b and b.strip().startswith("sed ")]
    assert len(commands) == 1, f"alerts/README.md: expected one sed command for runbook_url, found {commands}"
    assert "\n" not in commands[0].replace("\\\n", " "), commands[0]
    return commands[0]


def test_shipped_runbook_urls_are_the_repository_paths():
    for alert in _alerts():
        assert alert["annotations"]["runbook_url"] == f"{SHIPPED_RUNBOOK_BASE}{alert['alert']}.md", alert["alert"]


def test_readme_command_rewrites_every_runbook_url(tmp_path):
    """The documented sed rewrites the rules and their tests together, and the tests still pass."""
    command = _readme_sed_command()
    match = re.search(r"s#runbook_url: (\S+?)#runbook_url: (\S+?)#", command)
    assert match and match.group(1) == SHIPPED_RUNBOOK_BASE, command
    new_base = match.group(2)
    assert _is_url(new_base) and new_base.endswith("/"), new_base
    shutil.copytree(ALERTS_DIR, tmp_path / "alerts")
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "alerts"
    urls = {}
    for path in copied.glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    urls[rule["alert"]] = rule["annotations"]["runbook_url"]
    assert urls == {name: f"{new_base}{name}.md" for name in _alert_names()}
    texts = "".join(p.read_text() for p in copied.rglob("*.yml"))
    assert f"runbook_url: {SHIPPED_RUNBOOK_BASE}" not in texts
    promtool = binary("promtool")
    tests = sorted(str(p) for p in (copied / "tests").glob("*.yml"))
    checked = subprocess.run([promtool, "test", "rules", *tests], cwd=copied, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_readme_lists_every_paging_alert():
    """alerts/README.md names the alerts that page: exactly those with severity critical."""
    text = ALERTS_README.read_text()
    section = text.split("<!-- paging alerts:", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"^\s*\| `(LyncOwa\w+)` \|", section, re.M)
    critical = sorted(a["alert"] for a in _alerts() if a["labels"]["severity"] == "critical")
    assert sorted(listed) == critical
    count = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
             10: "ten"}.get(len(critical), str(len(critical)))
    assert f"These {count} alerts page" in text


def _metrics_used(expr: str, recorded: dict[str, str], seen: frozenset = frozenset()) -> set[str]:
    """Raw metric names an expression reads, through recording rules."""
    used: set[str] = set(re.findall(r"\bup\b(?=\s*[{)\s])", expr))
    for token in METRIC_TOKEN.findall(expr):
        if token in recorded and token not in seen:
            used |= _metrics_used(recorded[token], recorded, seen | {token})
        else:
            used.add(token)
    return used


def _collector_from_recording_rules(expr: str, seen: frozenset = frozenset()) -> bool:
    """True when the expression reads only recorded series whose every rule sets a static `collector`
    (directly, or by reading only such series itself)."""
    recording = [rule for rule in _rules() if "record" in rule]
    recorded = {rule["record"] for rule in recording}
    tokens = set(METRIC_TOKEN.findall(expr))
    if not tokens or not tokens <= recorded or tokens & seen:
        return False
    return all(rule.get("labels", {}).get("collector") or _collector_from_recording_rules(rule["expr"], seen | tokens)
               for rule in recording if rule["record"] in tokens)


def test_domain_alerts_carry_collector_and_never_use_absent():
    """Inhibition needs `collector` on every alert built on a collector's data; absence must not fire them."""
    recorded = {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}
    problems = []
    for alert in _alerts():
        used = _metrics_used(alert["expr"], recorded)
        domain = {m for m in used if not HEALTH_METRIC.match(m)}
        if not domain:
            continue
        collector = alert.get("labels", {}).get("collector")
        if not collector and not _collector_from_recording_rules(alert["expr"]):
            problems.append(f"{alert['alert']}: uses {sorted(domain)} but has no static `collector` label "
                            "(on the alert, or on every recording rule it reads)")
        if re.search(r"\babsent(_over_time)?\s*\(", alert["expr"]):
            problems.append(f"{alert['alert']}: a domain alert must not fire from absence (absent())")
    assert problems == [], "\n".join(problems)


def test_rules_read_only_documented_metrics():
    """A misspelt metric makes an alert that can never fire; every name must be in docs/metrics.md."""
    documented = set(re.findall(r"^\|\s*`(lync_owa_[a-z0-9_]+)`", METRICS_DOC.read_text(), re.M))
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    texts = [rule["expr"] for rule in _rules()]
    texts += [str(v) for alert in _alerts() for v in alert.get("annotations", {}).values()]
    unknown = set()
    for text in texts:
        for token in METRIC_TOKEN.findall(text):
            if token not in documented and token not in recorded:
                unknown.add(token)
    assert unknown == set(), f"not in docs/metrics.md nor a recording rule: {sorted(unknown)}"


def test_recording_rules_are_named_by_convention():
    names = [rule["record"] for rule in _rules() if "record" in rule]
    bad = [name for name in names if not re.fullmatch(r"lync_owa:[a-z0-9_]+(:[a-z0-9_]+)?", name)]
    assert bad == [], f"recording rules must be named lync_owa:<metric>[:<aggregation>]: {bad}"


# --------------------------------------------------------------------------------------------------
# promtool test cases: every alert firing and not firing
# --------------------------------------------------------------------------------------------------


def _test_cases() -> list[tuple[str, dict]]:
    cases = []
    for path in TEST_FILES:
        document = yaml.safe_load(path.read_text())
        for group in document.get("tests", []):
            for case in group.get("alert_rule_test", []) or []:
                cases.append((path.name, case))
    return cases


def test_test_files_load_the_rule_files():
    """A not-firing case of a rule that is not loaded passes vacuously."""
    loaded = set()
    for path in TEST_FILES:
        document = yaml.safe_load(path.read_text())
        files = {(path.parent / f).resolve() for f in document.get("rule_files", [])}
        assert files, f"{path.name}: no rule_files"
        missing = [str(f) for f in files if not f.exists()]
        assert missing == [], f"{path.name}: rule_files do not exist: {missing}"
        loaded |= files
    assert {p.resolve() for p in RULE_FILES} <= loaded, "a rule file is loaded by no test file"


def test_every_alert_has_a_firing_and_a_not_firing_case():
    names = set(_alert_names())
    firing: dict[str, int] = {}
    quiet: dict[str, int] = {}
    problems = []
    for file, case in _test_cases():
        name = case["alertname"]
        if name not in names:
            problems.append(f"{file}: case for unknown alert {name} (passes vacuously)")
            continue
        expected = case.get("exp_alerts") or []
        if not expected:
            quiet[name] = quiet.get(name, 0) + 1
            continue
        firing[name] = firing.get(name, 0) + 1
        for alert in expected:
            labels = alert.get("exp_labels") or {}
            annotations = alert.get("exp_annotations") or {}
            if "severity" not in labels:
                problems.append(f"{file}: {name} at {case['eval_time']}: exp_labels lack severity")
            for key in ("summary", "description", "runbook_url"):
                if key not in annotations:
                    problems.append(f"{file}: {name} at {case['eval_time']}: exp_annotations lack {key}")
    for name in sorted(names):
        if not firing.get(name):
            problems.append(f"{name}: no case where it fires")
        if not quiet.get(name):
            problems.append(f"{name}: no case where it does not fire")
    assert problems == [], "\n".join(problems)


# --------------------------------------------------------------------------------------------------
# Runbooks
# --------------------------------------------------------------------------------------------------


def test_every_alert_has_a_runbook():
    index = (RUNBOOKS_DIR / "README.md").read_text()
    problems = []
    for name in _alert_names():
        page = RUNBOOKS_DIR / f"{name}.md"
        if not page.exists():
            problems.append(f"{name}: no {page.relative_to(PROJECT_ROOT)}")
            continue
        text = page.read_text()
        if not text.startswith(f"# {name}\n"):
            problems.append(f"{page.name}: must start with '# {name}'")
        for section in RUNBOOK_SECTIONS:
            if section not in text:
                problems.append(f"{page.name}: no section '{section}'")
        if f"]({name}.md)" not in index:
            problems.append(f"docs/runbooks/README.md does not link {name}.md")
    orphans = sorted(p.stem for p in RUNBOOKS_DIR.glob("*.md") if p.stem != "README" and p.stem not in _alert_names())
    if orphans:
        problems.append(f"runbooks for alerts that do not exist: {orphans}")
    assert problems == [], "\n".join(problems)


def test_runbook_links_resolve():
    """Relative links between the runbooks and into the tree point at files that exist."""
    broken = []
    for page in RUNBOOKS_DIR.glob("*.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == [], broken


# --------------------------------------------------------------------------------------------------
# Alertmanager
# --------------------------------------------------------------------------------------------------


def test_alertmanager_example_validates():
    amtool = shutil.which("amtool")
    if amtool:
        result = _run(amtool, "check-config", str(ALERTMANAGER_EXAMPLE))
        assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr
        return
    # No amtool: the Alertmanager itself refuses to start on an invalid configuration.
    with _alertmanager() as _:
        pass


def test_alertmanager_routes_each_severity_to_its_receiver():
    amtool = binary("amtool")
    for alert in _alerts():
        severity = alert["labels"]["severity"]
        result = _run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_EXAMPLE}",
                      f"--verify.receivers={SEVERITY_RECEIVER[severity]}",
                      f"alertname={alert['alert']}", f"severity={severity}")
        assert result.returncode == 0, f"{alert['alert']} ({severity}): {result.stdout}{result.stderr}"
    # Alerts of other systems are not caught by the LyncOwa routes.
    result = _run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_EXAMPLE}",
                  "--verify.receivers=default", "alertname=NodeDown", "severity=critical")
    assert result.returncode == 0, result.stdout + result.stderr


class _alertmanager:
    """A real Alertmanager on a free loopback port with the example configuration."""

    def __init__(self):
        self.binary = binary("prometheus-alertmanager", "alertmanager")

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(Path(self.tmp.name) / "alertmanager.log", "w+")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={ALERTMANAGER_EXAMPLE}", f"--storage.path={self.tmp.name}",
             f"--web.listen-address={self.url.removeprefix('http://')}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                pytest.fail(f"alertmanager exited with {self.process.returncode}:\n{self.log.read()}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        pytest.fail("alertmanager not ready within 20 s")

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.tmp.cleanup()

    def post(self, alerts: list[dict]) -> None:
        body = json.dumps([{"labels": labels, "annotations": {}} for labels in alerts]).encode()
        request = urllib.request.Request(self.url + "/api/v2/alerts", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def states(self) -> dict[tuple, str]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as response:
            alerts = json.load(response)
        return {tuple(sorted(a["labels"].items())): a["status"]["state"] for a in alerts}


EXPORTER_A = {"job": "lync-owa", "instance": "exporter-a:10112"}
EXPORTER_B = {"job": "lync-owa", "instance": "exporter-b:10112"}
EXPORTER_C = {"job": "lync-owa", "instance": "exporter-c:10112"}
EXPORTER_D = {"job": "lync-owa", "instance": "exporter-d:10112"}
EXPORTER_E = {"job": "lync-owa", "instance": "exporter-e:10112"}
CMS = {"collector": "cms_replication"}


def _alert(name: str, severity: str = "warning", **labels: str) -> dict:
    return {"alertname": name, "severity": severity, **labels}


# Each alert with the state the inhibitions must give it: active, or suppressed (muted).
INHIBITION_CASES = [
    # Rule 1: exporter A cannot be scraped: its other alerts are moot...
    (_alert("LyncOwaExporterDown", "critical", **EXPORTER_A), "active"),
    (_alert("LyncOwaCollectorFailing", **EXPORTER_A, **CMS, target="fe01"), "suppressed"),
    # ...but not those of exporter B.
    (_alert("LyncOwaCollectorFailing", **EXPORTER_B, **CMS, target="fe03"), "active"),
    # Rule 2: refused credentials mute the generic failure of the same collector and target only.
    (_alert("LyncOwaCollectorAuthFailing", **EXPORTER_B, **CMS, target="fe01", kind="auth"), "active"),
    (_alert("LyncOwaCollectorFailing", **EXPORTER_B, **CMS, target="fe01"), "suppressed"),
    (_alert("LyncOwaCollectorFailing", **EXPORTER_B, **CMS, target="fe02"), "active"),
    # Rule 3: a failing collector mutes per-target domain alerts of the same collector and target
    # (a stand-in name: today's domain alerts are pool-wide; the per-target ones come with the
    # Exchange-side collectors)...
    (_alert("LyncOwaExamplePerTargetAlert", **EXPORTER_B, **CMS, target="fe02"), "suppressed"),
    (_alert("LyncOwaExamplePerTargetAlert", **EXPORTER_B, collector="event_112", target="fe02"), "active"),
    (_alert("LyncOwaExamplePerTargetAlert", **EXPORTER_B, **CMS, target="fe04"), "active"),
    # ...but not the pool-wide CMS replica alerts: other front ends still report the pool.
    (_alert("LyncOwaCMSReplicaNotUpToDate", job="lync-owa", **CMS, replica="edge01.contoso.com"), "active"),
    (_alert("LyncOwaCMSReplicaSilent", job="lync-owa", **CMS, replica="edge01.contoso.com"), "active"),
    # Rule 4: the verdict pages once per cause; the specific alert for the same fault and target is muted...
    (_alert("LyncOwaIMIntegrationBroken", "critical", **EXPORTER_C, collector="owa_app_pool", target="ex01",
            reason="owa_app_pool_not_started"), "active"),
    (_alert("LyncOwaOWAAppPoolNotStarted", "critical", **EXPORTER_C, collector="owa_app_pool", target="ex01"),
     "suppressed"),
    # ...on that target only...
    (_alert("LyncOwaOWAAppPoolNotStarted", "critical", **EXPORTER_C, collector="owa_app_pool", target="ex02"),
     "active"),
    (_alert("LyncOwaIMIntegrationBroken", "critical", **EXPORTER_C, collector="edge_hosting_provider",
            target="edge01", reason="edge_federation_disabled", mailboxes="exchange_online"), "active"),
    (_alert("LyncOwaEdgeFederationDisabled", "critical", **EXPORTER_C, collector="edge_hosting_provider",
            target="edge01"), "suppressed"),
    # ...and only for the same fault.
    (_alert("LyncOwaEdgeHostingProviderMissing", "critical", **EXPORTER_C, collector="edge_hosting_provider",
            target="edge01"), "active"),
    # Rule 5: a server in maintenance mutes the pages and tickets of that target (its checks and its
    # collectors)...
    (_alert("LyncOwaServerInMaintenance", "info", **EXPORTER_D, collector="server_maintenance", target="ex03"),
     "active"),
    (_alert("LyncOwaIMIntegrationBroken", "critical", **EXPORTER_D, collector="im_certificate", target="ex03",
            reason="im_thumbprint_matches_no_certificate"), "suppressed"),
    (_alert("LyncOwaCollectorFailing", **EXPORTER_D, collector="owa_events", target="ex03"), "suppressed"),
    (_alert("LyncOwaServerInMaintenance", "info", **EXPORTER_D, collector="server_maintenance", target="fe03"),
     "active"),
    (_alert("LyncOwaConfigCheckFailing", **EXPORTER_D, collector="lync_topology", target="fe03",
            check="owa_trusted_application_present"), "suppressed"),
    # ...not its info alerts, not other systems' alerts, not another target's, not pool-wide ones...
    (_alert("LyncOwaExampleInfoAlert", "info", **EXPORTER_D, collector="owa_im_settings", target="ex03"), "active"),
    (_alert("NodeDown", "critical", **EXPORTER_D, target="ex03"), "active"),
    (_alert("LyncOwaIMIntegrationBroken", "critical", **EXPORTER_D, collector="im_certificate", target="ex04",
            reason="im_thumbprint_matches_no_certificate"), "active"),
    (_alert("LyncOwaExamplePoolWideAlert", "critical", **EXPORTER_D, collector="cms_replication"), "active"),
    # ...and not the same target name seen by another exporter.
    (_alert("LyncOwaIMIntegrationBroken", "critical", **EXPORTER_E, collector="im_certificate", target="ex03",
            reason="im_thumbprint_matches_no_certificate"), "active"),
]


def test_alertmanager_inhibitions():
    with _alertmanager() as am:
        am.post([labels for labels, _ in INHIBITION_CASES])
        expected = {tuple(sorted(labels.items())): state for labels, state in INHIBITION_CASES}
        # The inhibitor learns about source alerts asynchronously: poll until the states settle.
        deadline = time.monotonic() + 15
        states: dict = {}
        while time.monotonic() < deadline:
            try:
                states = am.states()
            except (urllib.error.URLError, OSError):
                states = {}
            if states == expected:
                break
            time.sleep(0.2)
        wrong = {dict(k)["alertname"] + str({x: y for x, y in k if x not in ("alertname", "severity")}):
                 (states.get(k), want) for k, want in expected.items() if states.get(k) != want}
        assert wrong == {}, f"(got, want) per alert: {wrong}"
