"""The real alerting path on loopback: demo (simulator + exporter) -> Prometheus -> Alertmanager -> webhook.

Prometheus loads the project's own rule files and Alertmanager the project's own example routing and
inhibitions; only what must change for a test run changes: the webhook URLs point at a receiver
inside the test, Alertmanager's grouping waits are a second, and every rule's `for:` is shortened
(``FOR_SECONDS``) so a scenario pages in seconds rather than the production quarter of an hour.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, free_port, unavailable

ALERTS_DIR = PROJECT_ROOT / "alerts"
SCRAPE_INTERVAL = "1s"
EVALUATION_INTERVAL = "1s"
COLLECTOR_INTERVAL = "2s"
FOR_SECONDS = 3
HEALTH_FOR_SECONDS = 60
JOB_NAME = "lync-owa"


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    unavailable(f"{' / '.join(names)} not installed (scripts/test installs Debian's prometheus packages)")


@dataclass
class Notification:
    received_at: float  # time.monotonic()
    receiver: str
    status: str  # firing | resolved
    alerts: list[dict[str, Any]]


@dataclass
class WebhookReceiver:
    """Alertmanager's webhook_config target: records every notification it is sent."""

    notifications: list[Notification] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(body)
                with receiver.condition:
                    receiver.notifications.append(
                        Notification(time.monotonic(), self.path.strip("/"), payload["status"], payload["alerts"])
                    )
                    receiver.condition.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, since: float = 0.0) -> list[tuple[Notification, dict[str, Any]]]:
        with self.condition:
            return [(n, a) for n in self.notifications if n.received_at >= since for a in n.alerts]

    def wait_for(self, predicate: Callable[[Notification, dict[str, Any]], bool], since: float,
                 timeout: float) -> tuple[Notification, dict[str, Any]] | None:
        end = time.monotonic() + timeout
        with self.condition:
            while True:
                for notification in self.notifications:
                    if notification.received_at < since:
                        continue
                    for alert in notification.alerts:
                        if predicate(notification, alert):
                            return notification, alert
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return None
                self.condition.wait(remaining)


def shortened_rules(rule_file: Path, out_dir: Path) -> Path:
    """A copy of a rule file with every `for:` set to FOR_SECONDS; expressions stay as shipped.

    The collector-health alerts keep a minute: on a loaded test machine one run can overrun the
    demo's 1.6 s deadline, which is the test machine's news, not the scenario's. Those alerts are
    proven by their promtool tests and by tests/e2e/test_rules.py against a real Alertmanager.
    """
    document = yaml.safe_load(rule_file.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                health = str(rule.get("alert", "")).startswith("LyncOwaCollector")
                rule["for"] = f"{HEALTH_FOR_SECONDS if health else FOR_SECONDS}s"
    target = out_dir / rule_file.name
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """alerts/alertmanager.example.yml with the webhooks pointed at the test and waits of a second."""
    document = yaml.safe_load((ALERTS_DIR / "alertmanager.example.yml").read_text())

    def fast(route: dict[str, Any]) -> None:
        for key, value in (("group_wait", "1s"), ("group_interval", "1s"), ("repeat_interval", "1h")):
            if key in route:
                route[key] = value
        for child in route.get("routes", []):
            fast(child)

    fast(document["route"])
    for receiver in document["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"
    return document


class Process:
    """A child process whose output goes to a file, shown when something fails."""

    def __init__(self, name: str, args: list[str], workdir: Path, cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(args, cwd=cwd or workdir, stdout=self._log, stderr=subprocess.STDOUT)

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._log.close()
        return self.popen.returncode


def http_json(url: str, data: dict[str, Any] | None = None, timeout: float = 5) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_until(what: str | Callable[[], str], check: Callable[[], bool], timeout: float,
               processes: list[Process]) -> None:
    """``what`` may be a callable: it is asked at the timeout, so it can say what was still missing."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for process in processes:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}\n{logs}")


class AlertingStack:
    """Demo + Prometheus + Alertmanager + webhook, all on loopback, started and stopped together.

    ``start()`` runs the demo as the one scrape target; a stack with other exporters (the shards of
    ``test_shards_e2e.py``) starts them itself and then calls :meth:`start_alerting` with their addresses.
    """

    def __init__(self, workdir_prefix: str = "lync-owa-e2e-") -> None:
        self.prometheus_bin = binary("prometheus")
        self.alertmanager_bin = binary("prometheus-alertmanager", "alertmanager")
        self.workdir = Path(tempfile.mkdtemp(prefix=workdir_prefix))
        self.processes: list[Process] = []
        self.webhook = WebhookReceiver()
        self.scrape_targets: list[str] = []
        self.ready_urls: list[str] = []  # the exporters' /healthz, checked with Prometheus' and Alertmanager's

    # --- start --------------------------------------------------------------------------------
    def start(self) -> "AlertingStack":
        self.exporter_port, self.sim_port = free_port(), free_port()
        self.exporter_url = f"http://127.0.0.1:{self.exporter_port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.demo = self._spawn("demo", [sys.executable, "-m", "exporter.cli", "demo",
                                         "--web.listen-address", f"127.0.0.1:{self.exporter_port}",
                                         "--simulator.listen", f"127.0.0.1:{self.sim_port}",
                                         "--interval", COLLECTOR_INTERVAL], cwd=PROJECT_ROOT)
        self.start_alerting(
            [f"127.0.0.1:{self.exporter_port}"], "Prometheus' first scrape of the exporter",
            lambda: any(r["value"][1] == "1" for r in self.query(f'up{{job="{JOB_NAME}"}}')), 60)
        return self

    def start_alerting(self, scrape_targets: list[str], scraped_what: str, scraped: Callable[[], bool],
                       scraped_timeout: float) -> None:
        """The webhook, Alertmanager and Prometheus scraping ``scrape_targets`` as one job; returns once
        every part answers, ``scraped()`` holds, and Prometheus has loaded the (shortened) rules."""
        webhook_url = self.webhook.start()
        self.scrape_targets = list(scrape_targets)
        self.ready_urls = [f"http://{target}/healthz" for target in self.scrape_targets]
        am_port = free_port()
        self.alertmanager_url = f"http://127.0.0.1:{am_port}"
        am_config = self.workdir / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(alertmanager_config(webhook_url), sort_keys=False))
        (self.workdir / "am-data").mkdir()
        self.alertmanager = self._spawn("alertmanager", [
            self.alertmanager_bin, f"--config.file={am_config}", f"--storage.path={self.workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
        ])
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir()
        rule_files = [shortened_rules(path, rules_dir) for path in sorted(ALERTS_DIR.glob("*.rules.yml"))]
        prom_port = free_port()
        self.prometheus_url = f"http://127.0.0.1:{prom_port}"
        self.prom_config = self.workdir / "prometheus.yml"
        # Rules load only after the first scrape: with `for:` shortened to seconds, absent(up) would
        # otherwise page for the moment before Prometheus has scraped at all (10 minutes in production).
        self._write_prometheus_config(am_port, rule_files=[])
        self.prometheus = self._spawn("prometheus", [
            self.prometheus_bin, f"--config.file={self.prom_config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s",
            "--storage.tsdb.retention.time=1h",
        ])
        wait_until("the exporters, Prometheus and Alertmanager to answer", self._all_ready, 180, self.processes)
        wait_until(scraped_what, scraped, scraped_timeout, self.processes)
        self._write_prometheus_config(am_port, rule_files=rule_files)
        self.prometheus.popen.send_signal(signal.SIGHUP)
        wait_until("Prometheus to load the rules", lambda: bool(http_json(f"{self.prometheus_url}/api/v1/rules")
                                                                ["data"]["groups"]), 30, self.processes)

    def _write_prometheus_config(self, am_port: int, rule_files: list[Path]) -> None:
        self.prom_config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": EVALUATION_INTERVAL},
            "rule_files": [str(path) for path in rule_files],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            # One job for every exporter, as examples/kubernetes/prometheus-scrape.yml gives a shard's.
            "scrape_configs": [{"job_name": JOB_NAME, "static_configs": [{"targets": self.scrape_targets}]}],
        }, sort_keys=False))

    def _spawn(self, name: str, args: list[str], cwd: Path | None = None) -> Process:
        process = Process(name, args, self.workdir, cwd)
        self.processes.append(process)
        return process

    def _all_ready(self) -> bool:
        for url in (*self.ready_urls, f"{self.prometheus_url}/-/ready", f"{self.alertmanager_url}/-/ready"):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status != 200:
                    return False
        return True

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(signal.SIGINT if process.name == "demo" else signal.SIGTERM)
        if getattr(self.webhook, "server", None) is not None:  # not started when a start failed early
            self.webhook.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- use ----------------------------------------------------------------------------------
    def set_scenario(self, name: str) -> None:
        http_json(f"{self.sim_url}/control/scenario", {"name": name})

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        answer = http_json(url)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager still holds unresolved, muted (inhibited or silenced) ones too: one of them
        may still be notified, when what mutes it resolves first."""
        return http_json(f"{self.alertmanager_url}/api/v2/alerts?active=true&inhibited=true&silenced=true")

    def firing_alerts(self) -> list[dict[str, Any]]:
        """Alerts Prometheus itself holds as firing (pending excluded)."""
        answer = http_json(f"{self.prometheus_url}/api/v1/alerts")
        return [a for a in answer["data"]["alerts"] if a["state"] == "firing"]

    def wait_for_collectors_up(self, timeout: float = 60) -> None:
        """Every job's last run succeeded, as Prometheus sees it."""
        down: list[str] = []

        def all_up() -> bool:
            result = self.query("lync_owa_collector_up")
            down[:] = sorted(f"{r['metric'].get('collector')}/{r['metric'].get('target')}"
                             for r in result if float(r["value"][1]) != 1)
            return bool(result) and not down

        wait_until(lambda: f"every collector up in Prometheus (down at the last look: {down or 'none'})",
                   all_up, timeout, self.processes)
