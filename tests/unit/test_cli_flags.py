"""The flags operators know from Prometheus' exporters, as a real process prints and parses them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from collectors import registry
from exporter import cli
from exporter.version import BUILD, UNKNOWN, read_stamp
from tests.conftest import PROJECT_ROOT, write_config

GOOD = {
    "credentials": {"mon": {"username": "CONTOSO\\svc", "password_env": "LYNC_OWA_TEST_PASSWORD"}},
    "targets": [{"name": "fe01", "host": "fe01.contoso.com", "roles": ["lync_frontend"], "credential": "mon"}],
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter.cli", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)


def test_version_prints_version_revision_build_date_and_python_like_prometheus():
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"lync-owa-exporter, version {BUILD.version} (revision: {BUILD.revision})"
    assert lines[1] == f"  build date:       {BUILD.build_date}"
    assert lines[2] == f"  python version:   {sys.version.split()[0]}"
    assert lines[3].startswith("  platform:         linux/")


@pytest.mark.parametrize("text, expected", [
    ('{"revision": "2f1a27fe83", "build_date": "20261202-09:39:07"}', ("2f1a27fe83", "20261202-09:39:07")),
    ('{"revision": "2f1a27fe83"}', ("2f1a27fe83", UNKNOWN)),
    ('{"revision": "bad\\nvalue", "build_date": 7}', (UNKNOWN, UNKNOWN)),
    ("[1, 2]", (UNKNOWN, UNKNOWN)),
    ("not json", (UNKNOWN, UNKNOWN)),
    (None, (UNKNOWN, UNKNOWN)),
])
def test_a_missing_or_malformed_build_stamp_reads_unknown(text, expected):
    assert read_stamp(text) == expected


@pytest.mark.parametrize("argv", [["chek"], ["chek", "--help"], ["lync-owa-exporter", "-h"]])
def test_an_unknown_command_fails_with_exit_2_even_with_help(argv):
    result = run_cli(*argv)
    assert result.returncode == 2
    assert f"unknown command {argv[0]!r}" in result.stderr and "choose from run, check" in result.stderr
    assert result.stdout == ""


def test_top_level_help_shows_the_flags_of_run():
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--config.file", "--web.listen-address", "--web.telemetry-path", "--web.enable-lifecycle",
                 "--web.config.file", "--log.level", "--collector.owa_events, --no-collector.owa_events"):
        assert flag in result.stdout, flag
    assert "demo" in result.stdout and "check" in result.stdout  # and still the commands


def test_collector_switches_parse_per_collector_and_the_last_one_wins():
    args = cli.parse_args(["--no-collector.tls_probe", "--collector.cms_replication", "--collector.tls_probe",
                           "--no-collector.owa_events"])
    assert args.collector_switches == {"tls_probe": True, "cms_replication": True, "owa_events": False}
    assert cli.parse_args([]).collector_switches == {}
    every = [f"--no-collector.{name}" for name in registry.by_name()]
    assert cli.parse_args(every).collector_switches == {name: False for name in registry.by_name()}
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--collector.no_such_check"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("path, fragment", [("metrics", "must be a URL path"), ("/healthz", "taken by the exporter"),
                                            ("/-/reload", "taken by the exporter"), ("/m?x=1", "must be a URL path")])
def test_a_telemetry_path_that_cannot_work_is_refused(path, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["--web.telemetry-path", path])
    assert exit_info.value.code == 2 and fragment in capsys.readouterr().err
    assert cli.parse_args(["--web.telemetry-path", "/probe/metrics"]).telemetry_path == "/probe/metrics"


def test_check_counts_the_jobs_the_switches_leave(tmp_path, password_env, capsys):
    path = str(write_config(tmp_path, GOOD))
    frontend = [c.name for c in registry.ALL_COLLECTORS if "lync_frontend" in c.roles]
    assert cli.main(["check", "--config.file", path]) == 0
    assert f"OK, 1 targets, {len(frontend)} jobs" in capsys.readouterr().out
    assert cli.main(["check", "--config.file", path, f"--no-collector.{frontend[0]}"]) == 0
    assert f"OK, 1 targets, {len(frontend) - 1} jobs" in capsys.readouterr().out
