"""``demo``: the simulated estate plus the exporter, configured against it through the real path.

The configuration is written as YAML and loaded by the same loader as a user's file, with the
password passed by environment variable, so the demo exercises exactly what production runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from collectors.helpers.durations import format_duration, parse_duration
from exporter.cli import EXIT_BAD_CONFIG, EXIT_FAILURE, EXIT_OK, load_or_report
from exporter.shutdown import wait_for_signal

log = logging.getLogger(__name__)

DEMO_USERNAME = "sim-monitor"
DEMO_PASSWORD_ENV = "LYNC_OWA_DEMO_PASSWORD"


def demo_config(hosts: dict[str, Any], interval: str, ca_file: str | None) -> dict[str, Any]:
    """A configuration document for every simulated host."""
    targets = []
    for name, info in hosts.items():
        endpoints: dict[str, Any] = {
            "windows": {"url": info.windows_url, "encryption": "never", "ca_file": ca_file},
        }
        if info.exchange_url:
            endpoints["exchange"] = {"url": info.exchange_url, "encryption": "never", "ca_file": ca_file}
        if getattr(info, "lync_url", None):
            endpoints["lync"] = {"url": info.lync_url, "encryption": "never", "ca_file": ca_file}
        target: dict[str, Any] = {
            "name": name.split(".")[0],
            "host": name,
            "roles": list(info.roles),
            "credential": "simulator",
            "endpoints": endpoints,
        }
        tls_services = getattr(info, "tls_services", None)
        if tls_services:
            # The simulated TLS services listen on loopback ports, not 443/5061: probe the real
            # endpoint names, connect to the listeners, trust the simulator's CA.
            target["collectors"] = {
                "tls_probe": {
                    "endpoints": list(tls_services),
                    "connect_addresses": dict(tls_services),
                    "ca_file": info.tls_ca_file,
                }
            }
        targets.append(target)
    from collectors import registry

    # Each run must end before the next is due: the deadline is 80% of the interval (8 s at 10 s).
    timeout = format_duration(parse_duration(interval) * 0.8)
    collectors = {name: {"interval": interval, "timeout": timeout} for name in registry.by_name()}
    # The simulated names are not in any DNS: asking the system resolver about them would send queries
    # off this machine, and in "auto" mode the check is skipped anyway when the front end's own name
    # does not resolve.
    if "lync_topology" in collectors:
        collectors["lync_topology"]["resolve_autodiscover"] = "never"
    return {
        "global": {"lync_pool_fqdn": "pool01.contoso.com"},
        "credentials": {
            "simulator": {"username": DEMO_USERNAME, "password_env": DEMO_PASSWORD_ENV, "auth": "basic"}
        },
        "collectors": collectors,
        "targets": targets,
    }


def run_demo(args: argparse.Namespace) -> int:
    from exporter.app import Exporter
    from exporter.demo_simulator import (
        SimulatorOptions,
        SimulatorProcess,
        SimulatorProcessError,
    )
    from exporter.http import parse_listen_address

    try:
        parse_duration(args.interval)
    except ValueError as exc:
        print(f"demo: --interval {args.interval!r}: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        # The simulator's TLS material and the demo's configuration are files: say so before starting.
        tempfile.gettempdir()
    except FileNotFoundError as exc:
        print(f"demo: needs a writable temporary directory (set TMPDIR; in a container with a read-only root "
              f"file system, mount one with --tmpfs /tmp): {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.with_prometheus:
        from exporter.demo_alerting import (
            DemoAlertingError,
            find_alerts_dir,
            find_programs,
        )

        try:
            find_programs()
            find_alerts_dir()
            prometheus_listen = parse_listen_address(args.prometheus_listen)
            alertmanager_listen = parse_listen_address(args.alertmanager_listen)
        except (DemoAlertingError, ValueError) as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return EXIT_BAD_CONFIG
        if getattr(args, "web_config", None) is not None:
            print("demo: --with-prometheus scrapes the exporter without credentials; leave out --web.config.file",
                  file=sys.stderr)
            return EXIT_BAD_CONFIG
    password = secrets.token_urlsafe(18)
    os.environ[DEMO_PASSWORD_ENV] = password
    try:
        sim_host, sim_port = parse_listen_address(args.simulator_listen)
    except ValueError as exc:
        print(f"demo: --simulator.listen: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    sim = SimulatorProcess(SimulatorOptions(
        scenario=args.scenario, listen_host=sim_host or "127.0.0.1", control_port=sim_port,
        tls=args.simulator_tls, username=DEMO_USERNAME, password=password,
        log_level=args.log_level, log_format=args.log_format))
    try:
        sim.start()
    except SimulatorProcessError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG if exc.bad_scenario else EXIT_FAILURE
    workdir = tempfile.TemporaryDirectory(prefix="lync-owa-demo-")
    exporter = None
    alerting = None
    try:
        config_path = Path(workdir.name) / "config.yaml"
        document = demo_config(sim.hosts(), args.interval, sim.ca_cert_path if args.simulator_tls else None)
        config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        config = load_or_report(str(config_path))
        if config is None:
            return EXIT_BAD_CONFIG
        try:
            exporter = Exporter(config, args.listen_address, web_config=getattr(args, "web_config", None),
                                collector_switches=args.collector_switches, telemetry_path=args.telemetry_path,
                                enable_lifecycle=args.enable_lifecycle)
        except (OSError, ValueError) as exc:
            print(f"demo: cannot listen on {args.listen_address}: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        exporter.start()
        if args.with_prometheus:
            from exporter.demo_alerting import DemoAlerting, DemoAlertingError

            host, port = exporter.server.server_address[:2]
            target = f"[{host}]:{port}" if ":" in host else f"{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"
            alerting = DemoAlerting(Path(workdir.name), target, args.telemetry_path, parse_duration(args.interval),
                                    prometheus_listen, alertmanager_listen, show=lambda line: print(line, flush=True))
            try:
                alerting.start()
            except (DemoAlertingError, OSError) as exc:
                print(f"demo: cannot start Prometheus and Alertmanager: {exc}", file=sys.stderr)
                return EXIT_FAILURE
        print(
            f"lync-owa-exporter demo, scenario {args.scenario!r}\n"
            f"  metrics:        {exporter.url}{args.telemetry_path}\n"
            f"  status page:    {exporter.url}/\n"
            f"  simulator API:  {sim.control_url}/control/state\n"
            f"  switch scenario: curl -X POST -d '{{\"name\": \"no-event-112\"}}' {sim.control_url}/control/scenario\n"
            f"  configuration:  {config_path}  (edit it, then kill -HUP {os.getpid()} to reload)\n"
            + (alerting.banner() + "\n" if alerting is not None else "")
            + "Press Ctrl-C to stop.",
            flush=True,
        )
        wait_for_signal(on_reload=exporter.reloader.reload)
        return EXIT_OK
    finally:
        if alerting is not None:
            alerting.stop()
        if exporter is not None:
            exporter.stop()
        sim.stop()
        workdir.cleanup()
