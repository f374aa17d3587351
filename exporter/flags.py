"""Command-line pieces that follow the Prometheus exporters' habits: node_exporter's
``--collector.<name>`` / ``--no-collector.<name>`` switches, ``--web.telemetry-path``, kube-state-metrics'
``--shard`` / ``--total-shards``, and a top-level
``--help`` that shows the flags of the command that runs by default."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Iterable, Sequence

# Paths the exporter answers itself; the metrics cannot be served on one of them.
RESERVED_PATHS = ("/", "/healthz", "/-/reload")


class CollectorSwitch(argparse.Action):
    """``--collector.NAME`` turns NAME on and ``--no-collector.NAME`` off, on every target it fits,
    whatever the configuration file's ``enabled`` says; the last one given wins."""

    def __init__(self, option_strings: Sequence[str], dest: str, collector: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)
        self.collector = collector

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        switches = dict(getattr(namespace, self.dest, None) or {})  # never the shared default
        switches[self.collector] = not (option_string or "").startswith("--no-")
        setattr(namespace, self.dest, switches)


def add_collector_switches(parser: argparse.ArgumentParser, collectors: Iterable[str]) -> None:
    group = parser.add_argument_group(
        "collectors", "turn a collector on or off everywhere, overriding the configuration file's 'enabled'")
    for name in sorted(collectors):
        group.add_argument(f"--collector.{name}", f"--no-collector.{name}", dest="collector_switches",
                           action=CollectorSwitch, collector=name, default={}, help=f"run {name} (or not)")


def telemetry_path_problem(path: str) -> str | None:
    """Why ``--web.telemetry-path`` cannot be used, or None."""
    if not path.startswith("/") or any(c in path for c in "?# \t\r\n"):
        return f"--web.telemetry-path {path!r}: must be a URL path starting with '/', without query or spaces"
    if path in RESERVED_PATHS:
        return f"--web.telemetry-path {path!r}: taken by the exporter itself ({', '.join(RESERVED_PATHS)})"
    return None


class VersionAction(argparse.Action):
    """``--version``: the text as laid out (argparse's own version action re-wraps it into one paragraph)."""

    def __init__(self, option_strings: Sequence[str], dest: str, version: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.version = version

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(self.version)  # to stdout, as argparse's and Prometheus' version flags do
        parser.exit()


class TopLevelParser(argparse.ArgumentParser):
    """The program's parser: its help also lists the flags of ``default_command``, which runs when
    no command is named (``lync-owa-exporter --config.file x`` is ``run --config.file x``)."""

    default_command: argparse.ArgumentParser | None = None

    def format_help(self) -> str:
        text = super().format_help()
        if self.default_command is None:
            return text
        return f"{text}\nflags of the default command ({self.default_command.prog}):\n\n" \
               f"{self.default_command.format_help()}"


def add_shard_flags(parser: argparse.ArgumentParser) -> None:
    """kube-state-metrics' sharding flags (exporter.sharding)."""
    group = parser.add_argument_group(
        "sharding", "several exporters share one estate: each polls the targets whose name hashes to its shard")
    group.add_argument("--shard", type=int, default=None, metavar="N",
                       help="this exporter's shard, from 0 to --total-shards - 1 (default 0)")
    group.add_argument("--total-shards", dest="total_shards", type=int, default=1, metavar="M",
                       help="how many exporters share the estate (default 1: this one polls every target)")
    group.add_argument("--shard-from-hostname", dest="shard_from_hostname", action="store_true",
                       help="take the shard from the host name's -<ordinal> suffix, as a Kubernetes "
                            "StatefulSet names its pods (lync-owa-exporter-2 is shard 2)")


def shard_from_args(args: argparse.Namespace, hostname: Callable[[], str]) -> tuple[Any, str | None]:
    """(the Shard the flags name, None), or (None, why the flags cannot be used)."""
    from exporter.sharding import Shard, ordinal_from_hostname, shard_problem

    index = args.shard
    if args.shard_from_hostname:
        if index is not None:
            return None, "--shard and --shard-from-hostname: give one of them"
        try:
            index = ordinal_from_hostname(hostname())
        except ValueError as exc:
            return None, f"--shard-from-hostname: {exc}"
    index = 0 if index is None else index
    problem = shard_problem(index, args.total_shards)
    if problem:
        return None, problem
    return Shard(index, args.total_shards), None
