"""Command-line glue: run the simulated estate until SIGINT/SIGTERM (``lync-owa-exporter simulate``)."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TextIO

from simulator.scenario import ScenarioError
from simulator.server import Simulator


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` / ``":8080"`` / ``"[::1]:0"`` to (host, port); ValueError explains."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"invalid listen address {listen!r} (expected HOST:PORT, e.g. 127.0.0.1:9985)")
    return host.strip("[]") or "127.0.0.1", int(port_text)


def run_simulator(scenario: str, listen: str, tls: bool, username: str, password: str,
                  out: TextIO | None = None, stop_event: threading.Event | None = None) -> int:
    """Start, print the control URL and every host's URLs, block until a signal, stop. Exit status."""
    out = out or sys.stdout
    try:
        host, port = parse_listen(listen)
        sim = Simulator(scenario=scenario, listen_host=host, control_port=port, tls=tls,
                        username=username, password=password)
    except (ValueError, ScenarioError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stop = stop_event or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        try:
            sim.start()
        except OSError as err:
            print(f"error: cannot listen on {listen}: {err}", file=sys.stderr)
            return 1
        print(f"simulated estate: scenario {sim.scenario_name}, control API {sim.control_url}", file=out)
        if sim.ca_cert_path:
            print(f"CA certificate: {sim.ca_cert_path}", file=out)
        for info in sim.hosts().values():
            urls = "  ".join(url for url in (info.windows_url, info.exchange_url, info.lync_url) if url)
            print(f"  {info.name:<24} {','.join(info.roles):<46} {urls}", file=out)
        out.flush()
        stop.wait()
        return 0
    finally:
        sim.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
