"""The container image, built from the committed Dockerfile and run the way the docs tell operators to.

The exporter runs as the image's non-root user on a read-only root file system with every capability
dropped, polls the simulated estate over the real remoting path, answers its HEALTHCHECK, serves
/metrics behind TLS and basic auth when given a web configuration, and on `stop` (SIGTERM) closes
every remote session and exits 0. How the image is built here is explained in `engine.py`.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors import registry
from simulator.server import Simulator
from tests.conftest import (
    PASSWORD_ENV,
    SIM_PASSWORD,
    SIM_USERNAME,
    estate_config,
    free_port,
    write_config,
)
from tests.container.engine import ULIMITS, Podman, build_image, require_tools
from tests.tls_material import (
    WEB_HASH,
    WEB_PASSWORD,
    WEB_USER,
    TestCA,
    write_web_config,
)

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

IMAGE = "localhost/lync-owa-exporter:test"
# Inside the container, slirp4netns makes the machine's loopback reachable at this address.
HOST_LOOPBACK_FROM_CONTAINER = "10.0.2.2"
COLLECTORS = tuple(registry.by_name())
# Bounds on waits on a small, busy machine; nothing here measures speed.
READY_WITHIN = 180
# How the docs tell operators to run the image, plus the test's own network.
HARDENED = ("--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    require_tools()
    engine = Podman(tmp_path_factory.mktemp("podman"))
    build_image(engine, IMAGE)
    yield engine
    engine.reset()


@pytest.fixture(scope="module")
def estate():
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username=SIM_USERNAME, password=SIM_PASSWORD)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def config_dir(tmp_path, estate):
    """/etc/lync-owa-exporter for the container: the configuration, pointing at the estate from inside."""
    document = estate_config(estate, interval="5s", timeout="4s", collectors=COLLECTORS)
    for target in document["targets"]:
        for endpoint in target["endpoints"].values():
            endpoint["url"] = endpoint["url"].replace("127.0.0.1", HOST_LOOPBACK_FROM_CONTAINER)
    folder = tmp_path / "etc"
    folder.mkdir()
    write_config(folder, document)
    return folder


class Container:
    def __init__(self, podman: Podman, port: int, name: str) -> None:
        self.podman, self.port, self.name = podman, port, name

    def logs(self) -> str:
        result = self.podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict:
        return json.loads(self.podman("inspect", "--type", "container", self.name).stdout)[0]["State"]


@pytest.fixture
def start(podman):
    """Run the image detached with a published port; the container is removed afterwards."""
    started: list[Container] = []

    def run(*args: str, volumes: dict[Path, str] = (), env: dict[str, str] = (), extra: tuple[str, ...] = ()):
        port = free_port()
        name = f"lync-owa-test-{uuid.uuid4().hex[:8]}"
        command = ["run", "--detach", "--name", name, *ULIMITS, *HARDENED, *extra,
                   "--network", "slirp4netns:allow_host_loopback=true", "--publish", f"127.0.0.1:{port}:10112"]
        for source, target in dict(volumes).items():
            command += ["--volume", f"{source}:{target}:ro"]
        for key, value in dict(env).items():
            command += ["--env", f"{key}={value}"]
        podman(*command, IMAGE, *args)
        container = Container(podman, port, name)
        started.append(container)
        return container

    yield run
    for container in started:
        podman("rm", "--force", "--time", "0", container.name, check=False)


def _get(url: str, context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _wait_for_every_job(container: Container, url: str, context=None, auth=None) -> str:
    """The scrape once every job has succeeded; fails with the container's log otherwise."""
    deadline = time.monotonic() + READY_WITHIN
    text = ""
    while time.monotonic() < deadline:
        if not container.state().get("Running"):
            pytest.fail(f"the container stopped: {container.state()}\n{container.logs()}")
        try:
            status, text = _get(url + "/metrics", context, auth)
        except OSError:
            time.sleep(1)
            continue
        up = [s for f in text_string_to_metric_families(text) if f.name == "lync_owa_collector_up" for s in f.samples]
        if status == 200 and up and all(sample.value == 1 for sample in up):
            return text
        time.sleep(1)
    pytest.fail(f"not every job succeeded within {READY_WITHIN}s; last scrape:\n{text[-3000:]}\n{container.logs()}")


def _open_shells(sim: Simulator) -> int:
    return sum(host["shells_open"] for host in sim.stats().values())


def test_the_image_runs_as_non_root_with_a_healthcheck(podman):
    image = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    config = image["Config"]
    assert config["User"] not in ("", "0", "root"), f"the image runs as root: {config}"
    assert config["Entrypoint"] == ["lync-owa-exporter"]
    assert config.get("StopSignal") == "SIGTERM"
    assert image["Healthcheck"]["Test"][:3] == ["CMD", "lync-owa-exporter", "healthcheck"], image["Healthcheck"]


def test_run_on_a_read_only_root_as_non_root_then_sigterm_closes_the_sessions(start, config_dir, estate):
    container = start(volumes={config_dir / "config.yaml": "/etc/lync-owa-exporter/config.yaml"},
                      env={PASSWORD_ENV: SIM_PASSWORD})
    text = _wait_for_every_job(container, f"http://127.0.0.1:{container.port}")
    jobs = {(s.labels["collector"], s.labels["target"]) for f in text_string_to_metric_families(text)
            if f.name == "lync_owa_collector_up" for s in f.samples}
    assert {collector for collector, _ in jobs} == set(COLLECTORS)

    assert container.podman("healthcheck", "run", container.name, check=False).returncode == 0, container.logs()
    uid = container.podman("exec", container.name, "id", "-u").stdout.strip()
    assert uid not in ("", "0"), f"the exporter runs as uid {uid}"
    for path in ("/probe", "/tmp/probe", "/etc/lync-owa-exporter/probe"):
        attempt = container.podman("exec", container.name, "touch", path, check=False)
        assert attempt.returncode != 0 and ("Read-only" in attempt.stderr or "Permission" in attempt.stderr), (
            f"{path} is writable inside the container: {attempt}")
    assert _open_shells(estate) > 0

    container.podman("stop", "--time", "60", container.name, timeout=120)
    state = container.state()
    logs = container.logs()
    assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} after SIGTERM:\n{logs}"
    assert _open_shells(estate) == 0, f"sessions left open on the servers after SIGTERM: {estate.stats()}"
    for symptom in ("Traceback", "Read-only file system", "Permission denied", "level=error"):
        assert symptom not in logs, f"{symptom!r} in the container's log:\n{logs}"
    assert SIM_PASSWORD not in logs


def test_tls_and_basic_auth_from_a_web_config_file(start, config_dir):
    ca = TestCA(config_dir)
    server = ca.issue("server", server=True)
    write_web_config(config_dir, {
        "tls_server_config": {"cert_file": f"/etc/lync-owa-exporter/{server.cert_path.name}",
                              "key_file": f"/etc/lync-owa-exporter/{server.key_path.name}"},
        "basic_auth_users": {WEB_USER: WEB_HASH},
    })
    for secret in (server.key_path, config_dir / "config.yaml"):
        os.chmod(secret, 0o644)  # readable by the image's user, which is not the file's owner here
    container = start("run", "--config.file=/etc/lync-owa-exporter/config.yaml", "--web.listen-address=:10112",
                      "--web.config.file=/etc/lync-owa-exporter/web-config.yml",
                      volumes={config_dir: "/etc/lync-owa-exporter"}, env={PASSWORD_ENV: SIM_PASSWORD})
    url = f"https://127.0.0.1:{container.port}"
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    _wait_for_every_job(container, url, context, (WEB_USER, WEB_PASSWORD))

    assert _get(url + "/metrics", context)[0] == 401
    assert _get(url + "/metrics", context, (WEB_USER, "wrong"))[0] == 401
    assert _get(url + "/healthz", context)[0] == 200
    try:  # plain HTTP on the TLS port: a 400 or a closed connection, never the metrics
        status, body = _get(f"http://127.0.0.1:{container.port}/metrics", auth=(WEB_USER, WEB_PASSWORD))
    except OSError:
        status, body = None, ""
    assert status != 200 and "lync_owa_" not in body, status
    # The image's HEALTHCHECK, unchanged, finds the exporter behind TLS.
    assert container.podman("healthcheck", "run", container.name, check=False).returncode == 0, container.logs()
    logs = container.logs()
    assert WEB_PASSWORD not in logs and SIM_PASSWORD not in logs


def test_demo_needs_only_a_tmpfs_on_a_read_only_root(start, podman):
    container = start("demo", "--web.listen-address=:10112", extra=("--tmpfs", "/tmp"))
    deadline = time.monotonic() + READY_WITHIN
    status, text = 0, ""
    while time.monotonic() < deadline and "lync_owa_cms_replica_up_to_date" not in text:
        try:
            status, text = _get(f"http://127.0.0.1:{container.port}/metrics")
        except OSError:
            pass
        time.sleep(1)
    assert status == 200 and "lync_owa_cms_replica_up_to_date" in text, container.logs()

    # Without one it says so and exits, rather than hanging until `docker stop` kills it.
    result = podman("run", "--rm", *ULIMITS, *HARDENED, "--network", "none", IMAGE,
                    "demo", "--web.listen-address=:10112", check=False, timeout=120)
    assert result.returncode == 1, result
    assert "writable temporary directory" in result.stderr and "--tmpfs /tmp" in result.stderr, result.stderr
