"""Command line: ``run`` (default), ``check``, ``demo``, ``simulate``, with Go-exporter flag names."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import Sequence

from exporter import diagnose, evtx_command, logsetup
from exporter.flags import (
    TopLevelParser,
    VersionAction,
    add_collector_switches,
    add_shard_flags,
    shard_from_args,
    telemetry_path_problem,
)
from exporter.malloc_arenas import limit_malloc_arenas
from exporter.shutdown import install_signal_handlers, wait_for_signal

log = logging.getLogger("exporter")

DEFAULT_LISTEN = ":10112"
DEFAULT_CONFIG = "/etc/lync-owa-exporter/config.yaml"
SUBCOMMANDS = ("run", "check", "demo", "simulate", "healthcheck", "evtx", "diagnose")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_CONFIG = 2
SCENARIO_HELP = ("a shipped scenario name (healthy, thumbprint-drift...) or the path of a scenario YAML file, "
                 "which may say 'base: healthy' and replay Export-Clixml captures (simulator/README.md)")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log.level", dest="log_level", choices=sorted(logsetup.LEVELS), default="info")
    parser.add_argument("--log.format", dest="log_format", choices=("logfmt", "json"), default="logfmt")


def _add_web_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.config.file", dest="web_config_file", default=None,
        help="TLS and basic authentication for /metrics, in the exporter-toolkit format (docs/web-config.md)",
    )


def _add_serving(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics",
                        help="path under which to expose metrics (default /metrics)")
    parser.add_argument("--web.enable-lifecycle", dest="enable_lifecycle", action="store_true",
                        help="allow POST /-/reload to reload the configuration (SIGHUP always does)")


def build_parser() -> argparse.ArgumentParser:
    from collectors import registry
    from exporter.version import BUILD

    parser = TopLevelParser(
        prog="lync-owa-exporter",
        description="Prometheus exporter: is IM and presence in Outlook Web App working, and if not, why.",
    )
    parser.add_argument("--version", action=VersionAction, version=BUILD.text(),
                        help="print the version, git revision, build date and Python, and exit")
    sub = parser.add_subparsers(dest="command", parser_class=argparse.ArgumentParser)
    collectors = registry.by_name()

    run = sub.add_parser("run", help="poll the configured servers and serve /metrics (default)",
                         usage="%(prog)s [--config.file FILE] [--web.listen-address [HOST]:PORT] [flags]")
    parser.default_command = run
    run.add_argument("--config.file", dest="config_file", default=DEFAULT_CONFIG)
    run.add_argument("--web.listen-address", dest="listen_address", default=DEFAULT_LISTEN)
    _add_serving(run)
    _add_web_config(run)
    _add_common(run)
    add_collector_switches(run, collectors)
    add_shard_flags(run)

    check = sub.add_parser("check", help="validate a configuration file: exit 0, or 2 listing every error")
    check.add_argument("--config.file", dest="config_file", default=DEFAULT_CONFIG)
    _add_web_config(check)
    _add_common(check)
    add_collector_switches(check, collectors)
    add_shard_flags(check)

    demo = sub.add_parser("demo", help="run the exporter against the built-in simulated estate")
    demo.add_argument("--scenario", default="healthy", help=SCENARIO_HELP)
    demo.add_argument("--web.listen-address", dest="listen_address", default="127.0.0.1:10112")
    demo.add_argument(
        "--simulator.listen", dest="simulator_listen", default="127.0.0.1:10120",
        help="control API address; simulated hosts take the following ports (port 0: all ephemeral)",
    )
    demo.add_argument("--simulator.tls", dest="simulator_tls", action="store_true", help="serve WSMan over HTTPS")
    demo.add_argument("--interval", default="10s", help="collector interval in the demo (Prometheus duration)")
    demo.add_argument("--with-prometheus", dest="with_prometheus", action="store_true",
                      help="also run Prometheus with the shipped alert rules and Alertmanager with the example "
                           "routing (the prometheus and prometheus-alertmanager programs must be on PATH)")
    demo.add_argument("--prometheus.listen", dest="prometheus_listen", default="127.0.0.1:10190",
                      help="with --with-prometheus: Prometheus' address (port 0: any free port)")
    demo.add_argument("--alertmanager.listen", dest="alertmanager_listen", default="127.0.0.1:10193",
                      help="with --with-prometheus: Alertmanager's address (port 0: any free port)")
    _add_serving(demo)
    _add_web_config(demo)
    _add_common(demo)
    add_collector_switches(demo, collectors)

    simulate = sub.add_parser("simulate", help="run the simulated estate alone")
    simulate.add_argument("--scenario", default="healthy", help=SCENARIO_HELP)
    simulate.add_argument("--listen", default="127.0.0.1:10120")
    simulate.add_argument("--tls", action="store_true")
    simulate.add_argument("--username", default="sim-monitor")
    simulate.add_argument(
        "--password-env", dest="password_env", default="LYNC_OWA_SIM_PASSWORD",
        help="environment variable holding the password the simulated hosts accept",
    )
    _add_common(simulate)

    health = sub.add_parser("healthcheck", help="exit 0 when the local exporter's /healthz answers 200 (containers)")
    health.add_argument("--web.listen-address", dest="listen_address", default=DEFAULT_LISTEN)
    health.add_argument("--timeout", type=float, default=4.0, help="seconds")
    _add_common(health)

    _add_common(evtx_command.add_parser(sub))
    _add_common(diagnose.add_parser(sub, collectors))
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    parser = build_parser()
    if argv and not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        # Not `run`'s business: `lync-owa-exporter chek --help` must not print run's help and exit 0.
        parser.error(f"unknown command {argv[0]!r} (choose from {', '.join(SUBCOMMANDS)})")
    # `run` is the default: `lync-owa-exporter --config.file x` means `lync-owa-exporter run --config.file x`.
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")
    args = parser.parse_args(argv)
    problem = telemetry_path_problem(getattr(args, "telemetry_path", "/metrics"))
    if problem:
        parser.error(problem)
    if args.command in ("run", "check"):
        args.shard_spec, problem = shard_from_args(args, socket.gethostname)
        if problem:
            parser.error(problem)  # exit 2, as for every other unusable flag
    return args


def load_or_report(path: str):
    """The validated configuration, or None after printing every problem to stderr."""
    from collectors import registry
    from exporter.config import ConfigError, load_config

    try:
        return load_config(path, registry.by_name())
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return None


def load_web_config_or_report(path: str | None):
    """(True, the web configuration or None when no file was given), or (False, None) after printing every problem."""
    from exporter.web_config import WebConfigError, load_web_config

    if path is None:
        return True, None
    try:
        web_config = load_web_config(path)
    except WebConfigError as exc:
        print(str(exc), file=sys.stderr)
        return False, None
    for warning in web_config.warnings:
        log.warning("web configuration: %s", warning, extra={"file": path})
    return True, web_config


def cmd_check(args: argparse.Namespace) -> int:
    from collectors import registry
    from exporter.job_plan import planned_jobs
    from exporter.sharding import describe

    config = load_or_report(args.config_file)
    web_ok, web_config = load_web_config_or_report(args.web_config_file)
    if config is None or not web_ok:
        return EXIT_BAD_CONFIG
    jobs = planned_jobs(config, registry.by_name(), args.collector_switches, args.shard_spec)
    if args.shard_spec.total > 1:
        print(f"{args.config_file}: OK, {len(config.targets)} targets; {describe(jobs, args.shard_spec)}")
    else:
        print(f"{args.config_file}: OK, {len(config.targets)} targets, {len(jobs)} jobs")
    if web_config is not None:
        print(f"{args.web_config_file}: OK, {web_config.summary()}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from exporter.app import Exporter

    config = load_or_report(args.config_file)
    web_ok, web_config = load_web_config_or_report(args.web_config_file)
    if config is None or not web_ok:
        return EXIT_BAD_CONFIG
    try:
        exporter = Exporter(config, args.listen_address, web_config=web_config,
                            collector_switches=args.collector_switches, telemetry_path=args.telemetry_path,
                            enable_lifecycle=args.enable_lifecycle, shard=args.shard_spec)
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return EXIT_FAILURE
    from exporter.serving import ServingError

    try:
        exporter.start()
    except ServingError as exc:  # start stopped what it had started
        log.error("cannot start: %s", exc)
        return EXIT_FAILURE
    try:
        wait_for_signal(on_reload=exporter.reloader.reload)
    finally:
        exporter.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from exporter.demo import run_demo

    web_ok, args.web_config = load_web_config_or_report(args.web_config_file)
    if not web_ok:
        return EXIT_BAD_CONFIG
    return run_demo(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    import os

    from simulator.cli import run_simulator

    password = os.environ.get(args.password_env)
    if not password:
        print(f"simulate: set the environment variable {args.password_env} to the password the hosts accept", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return run_simulator(args.scenario, args.listen, args.tls, args.username, password)


def cmd_healthcheck(args: argparse.Namespace) -> int:
    """Ask the exporter on this machine for /healthz, over HTTP or, when it serves TLS, HTTPS.

    For a container HEALTHCHECK: it needs no credentials (/healthz is open) and works whether or not
    --web.config.file turned TLS on. The certificate is not verified: the peer is this machine.
    """
    import ssl
    import urllib.error
    import urllib.request

    from exporter.http import parse_listen_address

    try:
        host, port = parse_listen_address(args.listen_address)
    except ValueError as exc:
        print(f"healthcheck: --web.listen-address: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    host = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    last_error = ""
    for scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(f"{scheme}://{where}/healthz", timeout=args.timeout,
                                        context=insecure if scheme == "https" else None) as response:
                if response.status == 200:
                    return EXIT_OK
                last_error = f"{scheme}: HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"{scheme}: HTTP {exc.code}"  # 400 on plain HTTP to a TLS port: try HTTPS
        except (OSError, ssl.SSLError) as exc:
            last_error = f"{scheme}: {exc}"
    print(f"healthcheck: {where}/healthz: {last_error}", file=sys.stderr)
    return EXIT_FAILURE


COMMANDS = {"run": cmd_run, "check": cmd_check, "demo": cmd_demo, "simulate": cmd_simulate,
            "healthcheck": cmd_healthcheck, "evtx": evtx_command.run, "diagnose": diagnose.run}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logsetup.configure(args.log_level, args.log_format)
    if args.command in ("run", "demo"):
        install_signal_handlers()
        limit_malloc_arenas()  # before the pollers' threads exist (exporter.malloc_arenas says why)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
