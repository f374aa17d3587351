"""`demo --with-prometheus` as a user runs it: the demo starts a real Prometheus with the shipped rules
and a real Alertmanager with the example routing on the ports it prints; breaking a scenario fires
the page in both, and healing it resolves the page."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.conftest import PROJECT_ROOT, free_port
from tests.e2e.alerting_stack import binary

pytestmark = pytest.mark.e2e

TIMEOUT = 120


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def get_json(url: str):
    return json.loads(get(url)[1])


def post_json(url: str, document: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_demo_with_prometheus_shows_the_page_fire_and_resolve(tmp_path):
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    out_path = tmp_path / "demo.out"
    with out_path.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "demo", "--with-prometheus", "--interval", "2s",
             "--web.listen-address", f"127.0.0.1:{free_port()}", "--simulator.listen", "127.0.0.1:0",
             "--prometheus.listen", f"127.0.0.1:{free_port()}", "--alertmanager.listen", "127.0.0.1:0"],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)

    def output() -> str:
        return out_path.read_text(errors="replace")

    def wait(what: str, check) -> None:
        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            assert demo.poll() is None, f"demo exited with {demo.returncode}:\n{output()[-4000:]}"
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}\n{output()[-4000:]}")

    try:
        wait("the demo's banner", lambda: "Press Ctrl-C to stop." in output())
        text = output()
        prometheus_page = re.search(r"Prometheus: +(http://127\.0\.0\.1:\d+/(?:classic/)?alerts) ", text).group(1)
        prometheus = prometheus_page.rsplit("/", 2 if "/classic/" in prometheus_page else 1)[0]
        alertmanager = re.search(r"Alertmanager: +(http://127\.0\.0\.1:\d+)/#/alerts", text).group(1)
        simulator = re.search(r"simulator API: +(http://127\.0\.0\.1:\d+)/control/state", text).group(1)
        assert "every for: cut to 6s" in text  # three collector intervals

        # Their own pages answer on the printed ports, and Prometheus runs the shipped rules.
        assert get(prometheus_page)[0] == 200 and get(f"{alertmanager}/")[0] == 200
        groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
        assert "LyncOwaIMIntegrationBroken" in {rule["name"] for g in groups for rule in g["rules"]}
        config = get_json(f"{alertmanager}/api/v2/status")["config"]["original"]
        assert "lync-owa-pager" in config and "LyncOwa" in config  # the example routing

        def page_in_prometheus() -> list[dict]:
            alerts = get_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "LyncOwaIMIntegrationBroken"
                    and a["labels"].get("target") == "ex01" and a["state"] == "firing"]

        def page_in_alertmanager() -> list[dict]:
            query = urllib.parse.urlencode({"filter": 'alertname="LyncOwaIMIntegrationBroken"'})
            return [a for a in get_json(f"{alertmanager}/api/v2/alerts?{query}")
                    if a["labels"].get("target") == "ex01" and a["status"]["state"] == "active"]

        assert not page_in_prometheus()
        post_json(f"{simulator}/control/scenario", {"name": "no-event-112"})
        wait("the page firing in Prometheus", lambda: bool(page_in_prometheus()))
        assert page_in_prometheus()[0]["labels"]["reason"] == "no_event_112_since_pool_start"
        if "/classic/" in prometheus_page:  # the page is rendered by Prometheus itself: the alert is in it
            page = get(prometheus_page)[1].decode()
            assert re.search(r"<b>LyncOwaIMIntegrationBroken</b> \([1-9]\d* active\)", page)
        wait("the page in Alertmanager", lambda: bool(page_in_alertmanager()))
        assert page_in_alertmanager()[0]["receivers"] == [{"name": "lync-owa-pager"}]
        wait("the notification printed by the demo", lambda: re.search(
            r"alertmanager -> lync-owa-pager: FIRING LyncOwaIMIntegrationBroken reason=no_event_112_since_pool_start "
            r"severity=critical target=ex01", output()))

        post_json(f"{simulator}/control/scenario", {"name": "healthy"})
        wait("the page gone from Prometheus", lambda: not page_in_prometheus())
        if "/classic/" in prometheus_page:
            page = get(prometheus_page)[1].decode()
            assert re.search(r"<b>LyncOwaIMIntegrationBroken</b> \(0 active\)", page)
        wait("the resolution sent and printed", lambda: "RESOLVED LyncOwaIMIntegrationBroken" in output())
        wait("the page gone from Alertmanager", lambda: not page_in_alertmanager())
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait(10)
    assert demo.returncode == 0, output()[-4000:]
    assert "Prometheus" in output()
