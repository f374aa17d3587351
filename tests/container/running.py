"""Running the image built by ``engine.py`` the way the docs tell operators to, and reading it back.

Shared by the container tests: the hardened ``podman run`` options, a started container, and the
exporter's own answers (``/metrics``) read from outside.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.container.engine import Podman

IMAGE = "localhost/lync-owa-exporter:test"
# Inside the container, slirp4netns makes the machine's loopback reachable at this address.
HOST_LOOPBACK_FROM_CONTAINER = "10.0.2.2"
NETWORK = "slirp4netns:allow_host_loopback=true"
# Bounds on waits on a small, busy machine; nothing here measures speed.
READY_WITHIN = 180
# How the docs tell operators to run the image, plus the test's own network.
HARDENED = ("--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


class Container:
    def __init__(self, podman: Podman, port: int, name: str) -> None:
        self.podman, self.port, self.name = podman, port, name

    def logs(self) -> str:
        result = self.podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict:
        return json.loads(self.podman("inspect", "--type", "container", self.name).stdout)[0]["State"]


def get(url: str, context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def collector_up(text: str) -> dict[tuple[str, str], float]:
    """``lync_owa_collector_up`` of a scrape, by (collector, target)."""
    return {(s.labels["collector"], s.labels["target"]): s.value for f in text_string_to_metric_families(text)
            if f.name == "lync_owa_collector_up" for s in f.samples}


def wait_for_every_job(container: Container, url: str, context=None, auth=None) -> str:
    """The scrape once every job has succeeded; fails with the container's log otherwise."""
    deadline = time.monotonic() + READY_WITHIN
    text = ""
    while time.monotonic() < deadline:
        if not container.state().get("Running"):
            pytest.fail(f"the container stopped: {container.state()}\n{container.logs()}")
        try:
            status, text = get(url + "/metrics", context, auth)
        except OSError:
            time.sleep(1)
            continue
        up = collector_up(text) if status == 200 else {}
        if up and all(value == 1 for value in up.values()):
            return text
        time.sleep(1)
    pytest.fail(f"not every job succeeded within {READY_WITHIN}s; last scrape:\n{text[-3000:]}\n{container.logs()}")
