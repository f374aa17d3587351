"""The container image, built from the committed Dockerfile and run the way the docs tell operators to.

The exporter runs as the image's non-root user on a read-only root file system with every capability
dropped, polls the simulated estate over the real remoting path, answers its HEALTHCHECK, serves
/metrics behind TLS and basic auth when given a web configuration, and on `stop` (SIGTERM) closes
every remote session and exits 0. How the image is built here is explained in `engine.py`.
"""

from __future__ import annotations

import json
import os
import ssl
import time

import pytest

from collectors import registry
from simulator.server import Simulator
from tests.conftest import (
    PASSWORD_ENV,
    SIM_PASSWORD,
    SIM_USERNAME,
    estate_config,
    write_config,
)
from tests.container.engine import ULIMITS
from tests.container.running import (
    HARDENED,
    HOST_LOOPBACK_FROM_CONTAINER,
    IMAGE,
    READY_WITHIN,
    collector_up,
    get,
    wait_for_every_job,
)
from tests.tls_material import (
    WEB_HASH,
    WEB_PASSWORD,
    WEB_USER,
    TestCA,
    write_web_config,
)

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

COLLECTORS = tuple(registry.by_name())


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
    text = wait_for_every_job(container, f"http://127.0.0.1:{container.port}")
    jobs = set(collector_up(text))
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
    wait_for_every_job(container, url, context, (WEB_USER, WEB_PASSWORD))

    assert get(url + "/metrics", context)[0] == 401
    assert get(url + "/metrics", context, (WEB_USER, "wrong"))[0] == 401
    assert get(url + "/healthz", context)[0] == 200
    try:  # plain HTTP on the TLS port: a 400 or a closed connection, never the metrics
        status, body = get(f"http://127.0.0.1:{container.port}/metrics", auth=(WEB_USER, WEB_PASSWORD))
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
            status, text = get(f"http://127.0.0.1:{container.port}/metrics")
        except OSError:
            pass
        time.sleep(1)
    assert status == 200 and "lync_owa_cms_replica_up_to_date" in text, container.logs()

    # Without one it says so and exits, rather than hanging until `docker stop` kills it.
    result = podman("run", "--rm", *ULIMITS, *HARDENED, "--network", "none", IMAGE,
                    "demo", "--web.listen-address=:10112", check=False, timeout=120)
    assert result.returncode == 1, result
    assert "writable temporary directory" in result.stderr and "--tmpfs /tmp" in result.stderr, result.stderr
