"""The command line as an operator uses it: flags, the default command, and `check`'s exit codes."""

from __future__ import annotations

import pytest

from collectors import registry
from exporter import cli
from tests.conftest import write_config

GOOD = {
    "credentials": {"mon": {"username": "CONTOSO\\svc", "password_env": "LYNC_OWA_TEST_PASSWORD"}},
    "targets": [{"name": "fe01", "host": "fe01.contoso.com", "roles": ["lync_frontend"], "credential": "mon"}],
}


def test_run_is_the_default_command_with_go_style_flags():
    args = cli.parse_args(["--config.file", "x.yaml", "--web.listen-address", "127.0.0.1:9999", "--log.format", "json"])
    assert (args.command, args.config_file, args.listen_address, args.log_format) == ("run", "x.yaml", "127.0.0.1:9999", "json")
    assert cli.parse_args([]).listen_address == ":10112"
    assert cli.parse_args(["run", "--config.file=y.yaml"]).config_file == "y.yaml"


def test_check_accepts_a_good_configuration(tmp_path, password_env, capsys):
    assert cli.main(["check", "--config.file", str(write_config(tmp_path, GOOD))]) == 0
    frontend_collectors = sum("lync_frontend" in c.roles for c in registry.ALL_COLLECTORS)
    assert f"OK, 1 targets, {frontend_collectors} jobs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d["targets"][0].update(colour="blue"), "targets[0].colour"),
        (lambda d: d["targets"].append(dict(d["targets"][0])), "duplicate"),
        (lambda d: d["credentials"]["mon"].update(password_env="NOT_SET_ANYWHERE_X"), "NOT_SET_ANYWHERE_X"),
        (lambda d: d.update(collectors={"cms_replication": {"interval": "soon"}}), "collectors.cms_replication.interval"),
        (lambda d: d["targets"][0].update(roles="lync_frontend"), "targets[0].roles"),
    ],
)
def test_check_rejects_bad_configurations_naming_the_key(tmp_path, password_env, capsys, mutate, fragment):
    import copy

    document = copy.deepcopy(GOOD)
    mutate(document)
    assert cli.main(["check", "--config.file", str(write_config(tmp_path, document))]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "config.yaml:" in err


def test_check_on_a_missing_file_exits_2(tmp_path, capsys):
    assert cli.main(["check", "--config.file", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_run_with_a_bad_configuration_exits_2_without_starting(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("targets: [\n")
    assert cli.main(["run", "--config.file", str(path), "--web.listen-address", "127.0.0.1:0"]) == 2
    assert "bad.yaml:" in capsys.readouterr().err


def test_long_running_commands_handle_sigterm_before_they_start_serving(monkeypatch):
    """As PID 1 in a container an unhandled SIGTERM is ignored: the handler must be in place first."""
    import signal

    from exporter import shutdown

    seen = {}
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    monkeypatch.setitem(cli.COMMANDS, "run", lambda args: seen.setdefault("run", signal.getsignal(signal.SIGTERM)) and 0)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        cli.main(["run", "--config.file", "unused.yaml"])
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert seen["run"] is shutdown._handler


def test_demo_without_a_writable_temporary_directory_says_how_to_get_one(monkeypatch, capsys):
    import tempfile

    def no_tempdir():
        raise FileNotFoundError("No usable temporary directory found in ['/tmp', '/var/tmp', '/']")

    monkeypatch.setattr(tempfile, "gettempdir", no_tempdir)
    from exporter.demo import run_demo

    args = cli.parse_args(["demo", "--web.listen-address", "127.0.0.1:0"])
    args.web_config = None
    assert run_demo(args) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "writable temporary directory" in err and "--tmpfs /tmp" in err and "/var/tmp" in err
