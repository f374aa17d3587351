"""``demo --with-prometheus``: a real Prometheus loading the shipped alert rules and a real
Alertmanager routed by the shipped example, on loopback, so breaking a scenario shows the alert
firing in their own pages and healing it shows the resolution.

Only what a demo cannot wait for changes: every rule's ``for:`` is cut to a few collector intervals
(the shipped quarter of an hour would outlast anyone's patience), Alertmanager's grouping waits are
seconds, and the example's placeholder webhooks point at a receiver inside the demo that prints each
notification. The rules load after Prometheus' first scrape, so the shortened "exporter down" alert
cannot fire for the moment before Prometheus has scraped at all. Nothing here imports the simulator.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import yaml

from collectors.helpers.durations import format_duration

ALERTS_DIR = Path(__file__).resolve().parent.parent / "alerts"  # a source checkout's alerts/
READY_TIMEOUT_SECONDS = 90.0
# Collector-health alerts wait longer: one slow run on a busy laptop is not news worth a page.
HEALTH_ALERT_PREFIXES = ("LyncOwaCollector", "LyncOwaExporterDown")


class DemoAlertingError(Exception):
    """What is missing for --with-prometheus, said so the user can fix it."""


def find_programs() -> tuple[str, str]:
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if prometheus is None or alertmanager is None:
        missing = " and ".join(n for n, p in (("prometheus", prometheus), ("prometheus-alertmanager", alertmanager))
                               if p is None)
        raise DemoAlertingError(f"--with-prometheus needs {missing} on PATH (Debian: apt-get install prometheus "
                                "prometheus-alertmanager; scripts/bootstrap --with-system-packages installs them)")
    return prometheus, alertmanager


def find_alerts_dir(alerts_dir: Path = ALERTS_DIR) -> Path:
    if not (alerts_dir / "alertmanager.example.yml").is_file() or not list(alerts_dir.glob("*.rules.yml")):
        raise DemoAlertingError(f"--with-prometheus needs the alert rules of a source checkout; {alerts_dir} has "
                                "no *.rules.yml and alertmanager.example.yml")
    return alerts_dir


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def demo_rules(document: dict[str, Any], for_seconds: float, health_for_seconds: float) -> dict[str, Any]:
    """A rule file with every ``for:`` cut for the demo; expressions, labels and annotations as shipped."""
    for group in document.get("groups", []):
        for rule in group.get("rules", []):
            if "for" in rule:
                health = str(rule.get("alert", "")).startswith(HEALTH_ALERT_PREFIXES)
                rule["for"] = format_duration(health_for_seconds if health else for_seconds)
    return document


def demo_alertmanager_config(document: dict[str, Any], webhook_url: str, wait: str) -> dict[str, Any]:
    """The example routing with its webhooks pointed at the demo's receiver and waits of seconds."""
    def fast(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = wait
        for child in route.get("routes", []):
            fast(child)

    fast(document["route"])
    for receiver in document.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"
    return document


def describe_notification(receiver: str, payload: dict[str, Any]) -> list[str]:
    """One line per alert of an Alertmanager webhook notification."""
    lines = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        shown = " ".join(f"{k}={v}" for k, v in sorted(labels.items())
                         if k in ("target", "reason", "check", "replica", "severity", "source"))
        lines.append(f"alertmanager -> {receiver}: {str(alert.get('status', '?')).upper()} "
                     f"{labels.get('alertname', '?')} {shown}".rstrip())
    return lines


class _Receiver:
    """Stands in for the example's pager and ticket webhooks: prints what Alertmanager sends."""

    def __init__(self, show: Callable[[str], None]) -> None:
        show_line = show

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    for line in describe_notification(self.path.strip("/"), json.loads(body)):
                        show_line(line)
                except (ValueError, AttributeError):
                    show_line(f"alertmanager -> {self.path.strip('/')}: a notification that is not JSON")
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="demo-webhook", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


class DemoAlerting:
    """Prometheus + Alertmanager + the demo's webhook receiver, started and stopped together."""

    def __init__(self, workdir: Path, exporter_target: str, metrics_path: str, interval: float,
                 prometheus_listen: tuple[str, int], alertmanager_listen: tuple[str, int],
                 show: Callable[[str], None] = print) -> None:
        self.prometheus_bin, self.alertmanager_bin = find_programs()
        self.alerts_dir = find_alerts_dir()
        self.workdir = workdir
        self.exporter_target = exporter_target  # host:port Prometheus scrapes
        self.metrics_path = metrics_path
        self.interval = interval
        self.show = show
        host, port = prometheus_listen
        self.prometheus_address = f"{host or '127.0.0.1'}:{port or free_port(host or '127.0.0.1')}"
        host, port = alertmanager_listen
        self.alertmanager_address = f"{host or '127.0.0.1'}:{port or free_port(host or '127.0.0.1')}"
        self.prometheus_url = f"http://{self.prometheus_address}"
        self.alertmanager_url = f"http://{self.alertmanager_address}"
        # A broken scenario fires after three runs have seen it; collector health waits a few minutes.
        self.for_seconds = 3 * interval
        self.health_for_seconds = max(60.0, 12 * interval)
        self._processes: list[tuple[str, subprocess.Popen, Any]] = []
        self.alerts_page = f"{self.prometheus_url}/alerts"
        self._receiver: _Receiver | None = None

    # --- start ------------------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._receiver = _Receiver(self.show)
        am_config = self.workdir / "alertmanager.yml"
        example = yaml.safe_load((self.alerts_dir / "alertmanager.example.yml").read_text())
        wait = format_duration(max(1.0, self.interval / 2))
        am_config.write_text(yaml.safe_dump(demo_alertmanager_config(example, self._receiver.url, wait),
                                            sort_keys=False))
        (self.workdir / "alertmanager-data").mkdir(exist_ok=True)
        self._spawn("alertmanager", [
            self.alertmanager_bin, f"--config.file={am_config}", f"--storage.path={self.workdir / 'alertmanager-data'}",
            f"--web.listen-address={self.alertmanager_address}", "--cluster.listen-address=",
        ])
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir(exist_ok=True)
        self.rule_files = []
        for path in sorted(self.alerts_dir.glob("*.rules.yml")):
            target = rules_dir / path.name
            target.write_text(yaml.safe_dump(demo_rules(yaml.safe_load(path.read_text()), self.for_seconds,
                                                        self.health_for_seconds), sort_keys=False))
            self.rule_files.append(target)
        self.prometheus_config = self.workdir / "prometheus.yml"
        self._write_prometheus_config(rule_files=[])
        self._spawn("prometheus", [
            self.prometheus_bin, f"--config.file={self.prometheus_config}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address={self.prometheus_address}", "--storage.tsdb.retention.time=1d",
        ])
        self._wait("Prometheus and Alertmanager to answer", self._ready)
        self.alerts_page = self._alerts_page()
        self._wait("Prometheus' first scrape of the exporter", self._scraped)
        self._write_prometheus_config(rule_files=self.rule_files)
        self._processes[-1][1].send_signal(signal.SIGHUP)  # Prometheus reloads its configuration
        self._wait("Prometheus to load the rules", lambda: bool(
            _get_json(f"{self.prometheus_url}/api/v1/rules")["data"]["groups"]))

    def _write_prometheus_config(self, rule_files: list[Path]) -> None:
        step = format_duration(max(1.0, self.interval / 2))
        self.prometheus_config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": step, "evaluation_interval": step},
            "rule_files": [str(path) for path in rule_files],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager_address]}]}]},
            "scrape_configs": [{"job_name": "lync-owa", "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": [self.exporter_target]}]}],
        }, sort_keys=False))

    def _spawn(self, name: str, args: list[str]) -> None:
        log_file = (self.workdir / f"{name}.log").open("w")
        process = subprocess.Popen(args, cwd=self.workdir, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)  # Ctrl-C is ours to pass on
        self._processes.append((name, process, log_file))

    def _ready(self) -> bool:
        for url in (f"{self.prometheus_url}/-/ready", f"{self.alertmanager_url}/-/ready"):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status != 200:
                    return False
        return True

    def _alerts_page(self) -> str:
        """Prometheus' alerts page: /alerts, or /classic/alerts in builds without the React UI (Debian's)."""
        try:
            with urllib.request.urlopen(f"{self.prometheus_url}/alerts", timeout=5):
                return f"{self.prometheus_url}/alerts"
        except OSError:  # urllib's HTTPError (404) is an OSError too
            return f"{self.prometheus_url}/classic/alerts"

    def _scraped(self) -> bool:
        query = urllib.parse.urlencode({"query": 'up{job="lync-owa"}'})
        result = _get_json(f"{self.prometheus_url}/api/v1/query?{query}")["data"]["result"]
        return any(r["value"][1] == "1" for r in result)

    def _wait(self, what: str, check: Callable[[], bool]) -> None:
        end = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < end:
            for name, process, _ in self._processes:
                if process.poll() is not None:
                    raise DemoAlertingError(f"{name} exited with {process.returncode} while waiting for {what}; "
                                            f"its log: {self.workdir / (name + '.log')}\n{self.log_tail(name)}")
            try:
                if check():
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.25)
        raise DemoAlertingError(f"timed out after {READY_TIMEOUT_SECONDS:.0f}s waiting for {what}")

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- stop -------------------------------------------------------------------------------------
    def stop(self) -> None:
        for name, process, log_file in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            log_file.close()
        self._processes.clear()
        if self._receiver is not None:
            self._receiver.stop()
            self._receiver = None

    def banner(self) -> str:
        return (f"  Prometheus:     {self.alerts_page}  (shipped rules, every for: cut to "
                f"{format_duration(self.for_seconds)}; collector health {format_duration(self.health_for_seconds)})\n"
                f"  Alertmanager:   {self.alertmanager_url}/#/alerts  (routing of alerts/alertmanager.example.yml; "
                "notifications are printed here)")
