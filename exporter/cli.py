"""Command line: ``run`` (default), ``check``, ``demo``, ``simulate``, with Go-exporter flag names."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from exporter import __version__, logsetup
from exporter.shutdown import install_signal_handlers, wait_for_signal

log = logging.getLogger("exporter")

DEFAULT_LISTEN = ":10112"
DEFAULT_CONFIG = "/etc/lync-owa-exporter/config.yaml"
SUBCOMMANDS = ("run", "check", "demo", "simulate", "healthcheck")

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lync-owa-exporter",
        description="Prometheus exporter: is IM and presence in Outlook Web App working, and if not, why.",
    )
    parser.add_argument("--version", action="version", version=f"lync-owa-exporter {__version__}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="poll the configured servers and serve /metrics (default)")
    run.add_argument("--config.file", dest="config_file", default=DEFAULT_CONFIG)
    run.add_argument("--web.listen-address", dest="listen_address", default=DEFAULT_LISTEN)
    _add_web_config(run)
    _add_common(run)

    check = sub.add_parser("check", help="validate a configuration file: exit 0, or 2 listing every error")
    check.add_argument("--config.file", dest="config_file", default=DEFAULT_CONFIG)
    _add_web_config(check)
    _add_common(check)

    demo = sub.add_parser("demo", help="run the exporter against the built-in simulated estate")
    demo.add_argument("--scenario", default="healthy", help=SCENARIO_HELP)
    demo.add_argument("--web.listen-address", dest="listen_address", default="127.0.0.1:10112")
    demo.add_argument(
        "--simulator.listen", dest="simulator_listen", default="127.0.0.1:10120",
        help="control API address; simulated hosts take the following ports (port 0: all ephemeral)",
    )
    demo.add_argument("--simulator.tls", dest="simulator_tls", action="store_true", help="serve WSMan over HTTPS")
    demo.add_argument("--interval", default="10s", help="collector interval in the demo (Prometheus duration)")
    _add_web_config(demo)
    _add_common(demo)

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
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    # `run` is the default: `lync-owa-exporter --config.file x` means `lync-owa-exporter run --config.file x`.
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")
    return build_parser().parse_args(argv)


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

    config = load_or_report(args.config_file)
    web_ok, web_config = load_web_config_or_report(args.web_config_file)
    if config is None or not web_ok:
        return EXIT_BAD_CONFIG
    jobs = config.jobs(registry.by_name())
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
        exporter = Exporter(config, args.listen_address, web_config=web_config)
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return EXIT_FAILURE
    exporter.start()
    try:
        wait_for_signal()
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
            "healthcheck": cmd_healthcheck}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logsetup.configure(args.log_level, args.log_format)
    if args.command in ("run", "demo"):
        install_signal_handlers()
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
