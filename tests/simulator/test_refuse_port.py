"""The ``refuse`` fault keeps its port: clients are refused, nobody else can take it, clearing serves again.

While a host is refused its port is held by a bound socket that does not listen (simulator/transport.py).
A client connection on 127.0.0.1 must not be able to get that port as its local port, or binding the
listener again fails with EADDRINUSE (it did, in fault soaks under load). Linux 6.3+ lets a client
narrow its own ephemeral range to one port (IP_LOCAL_PORT_RANGE), which makes "the kernel hands out
exactly this port" deterministic instead of one chance in 28,000.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import socket
import struct

import pytest
import requests

from simulator.server import Simulator
from simulator.transport import Listener, Transport
from tests.simulator.helpers import EX01, FE01, FE02, pool_for, run

IP_LOCAL_PORT_RANGE = getattr(socket, "IP_LOCAL_PORT_RANGE", 51)  # linux/in.h


def _connect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def _tls_ports(sim: Simulator, host: str) -> list[int]:
    return sorted({int(address.rsplit(":", 1)[1]) for address in sim.hosts()[host].tls_services.values()})


def _client_narrowed_to(port: int) -> socket.socket:
    """A client socket whose ephemeral local port can only be ``port`` (skips where unsupported)."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, struct.pack("I", port | port << 16))
    except OSError as err:
        client.close()
        pytest.skip(f"IP_LOCAL_PORT_RANGE not supported here (Linux 6.3+): {err}")
    return client


def _refusal_in(err: BaseException) -> bool:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def test_a_refused_host_answers_connection_refused_and_clearing_serves_it_again(sim):
    port = sim.hosts()[FE01].port
    tls_ports = _tls_ports(sim, FE01)
    assert tls_ports, "a front end has TLS services (5061)"
    with pool_for(sim, FE01) as pool:
        sim.set_fault(FE01, "refuse")
        sim.set_fault(FE01, "refuse")  # again: still one placeholder, the port still held
        with pytest.raises(requests.exceptions.ConnectionError):
            run(pool, "Get-CsSite")  # its keep-alive connection was dropped
    for refused in [port, *tls_ports]:
        with pytest.raises(ConnectionRefusedError):  # RST to the SYN, not a reset after accepting
            _connect(refused)
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        with pool_for(sim, FE01):
            pass
    assert _refusal_in(raised.value), raised.value
    with pool_for(sim, FE02) as other:  # only that host is refused
        assert run(other, "Get-CsSite").output

    sim.clear_faults(FE01)
    assert sim.hosts()[FE01].port == port
    assert _tls_ports(sim, FE01) == tls_ports
    with pool_for(sim, FE01) as pool:
        assert run(pool, "Get-CsSite").output
    for served in tls_ports:
        _connect(served)


def test_while_refused_no_other_socket_can_take_the_port(sim):
    port = sim.hosts()[EX01].port
    sim.set_fault(EX01, "refuse")
    stranger = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with stranger, pytest.raises(OSError) as bound:
        stranger.bind(("127.0.0.1", port))
    assert bound.value.errno == errno.EADDRINUSE
    client = _client_narrowed_to(port)
    with client, pytest.raises(OSError) as connected:
        client.connect(("127.0.0.1", sim.hosts()[FE02].port))  # the only port it may use is held
    assert connected.value.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE), connected.value
    sim.clear_faults(EX01)
    _connect(port)


def test_the_narrowed_client_takes_a_port_nobody_holds():
    """The control for the test above: the same client does get the one port it allows when free."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    free_port = probe.getsockname()[1]
    probe.close()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with server, _client_narrowed_to(free_port) as client:
        client.connect(server.getsockname())
        assert client.getsockname()[1] == free_port


def test_many_refuse_and_clear_cycles_while_ports_are_taken_around_them(sim, caplog):
    """Each cycle, while refused, a client narrowed to each held port tries to connect from it, and
    300 sockets take ports from the ephemeral range; clearing must bind every port again."""
    caplog.set_level(logging.WARNING, logger="simulator.transport")
    hosts = [FE01, EX01]
    ports = {host: sim.hosts()[host].port for host in hosts}
    held = set(ports.values()) | {p for host in hosts for p in _tls_ports(sim, host)}
    target = sim.hosts()[FE02].port
    gc.collect()  # urllib3 closes a dropped pool's sockets only when it is collected
    fds_before = len(os.listdir("/proc/self/fd"))
    for cycle in range(40):
        for host in hosts:
            sim.set_fault(host, "refuse")
        for port in held:
            with _client_narrowed_to(port) as client, pytest.raises(OSError):
                client.connect(("127.0.0.1", target))
        grabbed = []
        try:
            for _ in range(300):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                grabbed.append(sock)
                sock.bind(("127.0.0.1", 0))
                assert sock.getsockname()[1] not in held
        finally:
            for sock in grabbed:
                sock.close()
        with pytest.raises(ConnectionRefusedError):
            _connect(ports[FE01])
        sim.clear_faults()
        for port in held:
            _connect(port)
        if cycle % 10 == 9:
            with pool_for(sim, EX01, exchange=True) as pool:
                assert run(pool, "Get-ExchangeServer").output
    assert {host: sim.hosts()[host].port for host in hosts} == ports
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 5  # every placeholder was closed
    assert not [r.getMessage() for r in caplog.records if "not held" in r.getMessage()]


def test_stopping_a_refused_simulator_lets_its_ports_go():
    simulator = Simulator(scenario="healthy", tls_services=False)
    simulator.start()
    try:
        port = simulator.hosts()[FE01].port
        simulator.set_fault(FE01, "refuse")
    finally:
        simulator.stop()
    after = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with after:
        after.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        after.bind(("127.0.0.1", port))
        after.listen(1)  # a placeholder left behind would make this EADDRINUSE


def test_a_first_bind_does_not_share_a_port_another_listener_holds():
    """Sharing is only for a listener's own placeholder: a port someone listens on, even with
    SO_REUSEPORT, still fails the first bind instead of splitting connections between them."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    transport = Transport()
    transport.start()
    try:
        with holder, pytest.raises(OSError) as raised:
            transport.bind(Listener("taken", "127.0.0.1", holder.getsockname()[1], handler=lambda c, a: None))
        assert raised.value.errno == errno.EADDRINUSE
    finally:
        transport.stop()
