"""`run` as a real process: SIGTERM (what `docker stop` sends) closes the remote sessions and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from simulator.server import Simulator
from tests.conftest import (
    PASSWORD_ENV,
    PROJECT_ROOT,
    SIM_PASSWORD,
    SIM_USERNAME,
    estate_config,
    free_port,
    write_config,
)

pytestmark = pytest.mark.e2e


def _open_shells(sim: Simulator) -> int:
    return sum(host["shells_open"] for host in sim.stats().values())


def _healthz_status(port: int) -> int:
    """/healthz's answer once the serving process has heard from the running scheduler (a snapshot
    reaches it within a heartbeat), or the last answer after 10 s."""
    end, status = time.monotonic() + 10, 0
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        time.sleep(0.1)
    return status


def test_sigterm_closes_every_remote_session_and_exits_zero(tmp_path):
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username=SIM_USERNAME, password=SIM_PASSWORD)
    sim.start()
    port = free_port()
    process = None
    try:
        config = write_config(tmp_path, estate_config(sim, interval="5s", timeout="4s", hosts=["fe01.contoso.com",
                                                                                             "fe02.contoso.com"]))
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "run", "--config.file", str(config),
             "--web.listen-address", f"127.0.0.1:{port}"],
            cwd=PROJECT_ROOT, env={**os.environ, PASSWORD_ENV: SIM_PASSWORD},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        end = time.monotonic() + 60
        while time.monotonic() < end and _open_shells(sim) < 2:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        assert _open_shells(sim) >= 2, "the exporter never opened its sessions"
        assert _healthz_status(port) == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert _open_shells(sim) == 0, f"sessions left open on the servers after SIGTERM: {sim.stats()}"
        assert SIM_PASSWORD not in output
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        sim.stop()
