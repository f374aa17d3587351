"""The session's guard against traffic beyond loopback (tests/loopback_guard.py) is on, and trips."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from tests import loopback_guard
from tests.conftest import PROJECT_ROOT


def test_the_guard_is_installed_for_the_whole_session():
    assert loopback_guard.installed()
    assert socket.getaddrinfo is loopback_guard._getaddrinfo


@pytest.mark.parametrize("name", ["ex01.contoso.com", "example.com", "pool01.contoso.com."])
def test_resolving_a_name_off_this_machine_is_refused_and_recorded(name):
    before = len(loopback_guard.REFUSED)
    with pytest.raises(socket.gaierror, match="test guard: resolving"):
        socket.getaddrinfo(name, 443)
    with pytest.raises(socket.gaierror, match="would leave this machine"):
        socket.gethostbyname(name)
    assert loopback_guard.REFUSED[before:] == [f"resolving {name!r}"] * 2


def test_connecting_off_this_machine_is_refused_before_a_packet_leaves():
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): were the guard off, this would try the network and time out.
    with socket.socket() as sock, pytest.raises(loopback_guard.TrafficBeyondLoopback, match="192.0.2.1:443"):
        sock.connect(("192.0.2.1", 443))
    with pytest.raises(OSError, match="test guard"):
        socket.create_connection(("192.0.2.1", 443), timeout=0.2)
    with socket.socket(socket.AF_INET6) as sock, pytest.raises(loopback_guard.TrafficBeyondLoopback):
        sock.connect(("2001:db8::1", 443, 0, 0))


def test_loopback_names_and_addresses_still_work():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
        thread.start()
        with socket.create_connection(("localhost", port), timeout=5) as client:
            thread.join(5)
            assert accepted and client.getpeername()[0] in ("127.0.0.1", "::ffff:127.0.0.1")
        accepted[0].close()
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert loopback_guard.is_loopback_name("demo.localhost")
    assert not loopback_guard.is_loopback_name("127.0.0.1.nip.io")
    assert loopback_guard.is_loopback_address("::ffff:127.0.0.1")


def test_a_child_process_started_with_the_guarded_environment_reports_what_it_refused(tmp_path):
    # The demo's own check (tests/e2e/test_demo.py) reads this report; here the child does go off-machine.
    report = tmp_path / "refused.txt"
    child = ("import socket\n"
             "try:\n    socket.getaddrinfo('ex01.contoso.com', 443)\nexcept OSError:\n    pass\n")
    subprocess.run([sys.executable, "-c", child], check=True, timeout=60, cwd=tmp_path,
                   env=loopback_guard.guarded_environment(report, PROJECT_ROOT))
    lines = report.read_text().splitlines()
    assert lines[0].startswith("installed: pid ")
    assert lines[1:] == ["refused: resolving 'ex01.contoso.com'"]
