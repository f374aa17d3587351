"""The sharding flags on the command line: kube-state-metrics' names, exit 2 with the reason for an
impossible shard, the StatefulSet ordinal from the host name; ``check`` shows the shard's plan; the
running exporter keeps its share through a reload and says its shard in lync_owa_build_info."""

from __future__ import annotations

import copy

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors import registry
from exporter import cli
from exporter.app import Exporter
from exporter.config import load_config
from exporter.sharding import Shard
from exporter.version import BUILD
from tests.conftest import write_config
from tests.unit.test_sharding import ESTATE, target


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


@pytest.mark.parametrize("flags, message", [
    (["--shard", "3", "--total-shards", "3"], "--shard 3: must be from 0 to 2"),
    (["--shard", "1"], "--shard 1: must be from 0 to 0"),
    (["--total-shards", "0"], "--total-shards 0: must be 1 or more"),
    (["--shard", "-2", "--total-shards", "2"], "--shard -2: must be from 0 to 1"),
    (["--shard", "x"], "argument --shard: invalid int value: 'x'"),
    (["--shard", "0", "--shard-from-hostname", "--total-shards", "2"],
     "--shard and --shard-from-hostname: give one of them"),
])
@pytest.mark.parametrize("command", ["run", "check"])
def test_impossible_shards_exit_2_naming_the_flag(command, flags, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.parse_args([command, "--config.file", "x.yaml", *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_shard_comes_from_the_pod_host_name(monkeypatch, capsys):
    monkeypatch.setattr("socket.gethostname", lambda: "lync-owa-exporter-2")
    args = cli.parse_args(["--shard-from-hostname", "--total-shards", "3"])
    assert args.command == "run" and args.shard_spec == Shard(2, 3)
    # The ordinal must fit the total: a StatefulSet scaled up without --total-shards is refused.
    with pytest.raises(SystemExit) as exited:
        cli.parse_args(["--shard-from-hostname", "--total-shards", "2"])
    assert exited.value.code == 2 and "--shard 2: must be from 0 to 1" in capsys.readouterr().err
    monkeypatch.setattr("socket.gethostname", lambda: "monitoring-vm")
    with pytest.raises(SystemExit):
        cli.parse_args(["--shard-from-hostname", "--total-shards", "2"])
    assert "host name 'monitoring-vm' does not end in -<number>" in capsys.readouterr().err


def test_no_flags_is_one_shard_of_one():
    assert cli.parse_args(["run"]).shard_spec == Shard(0, 1)


def test_check_prints_the_shards_share(tmp_path, capsys):
    path = write_config(tmp_path, ESTATE)
    # cmd_check, not main: main would point the logging at this test's captured stderr for good.
    assert cli.cmd_check(cli.parse_args(["check", "--config.file", str(path), "--shard", "0",
                                         "--total-shards", "3"])) == 0
    assert capsys.readouterr().out == (f"{path}: OK, 5 targets; shard 0 of 3: 1 target, 3 jobs, "
                                       f"fact readers: edge_hosting_provider/fe01\n")
    assert cli.cmd_check(cli.parse_args(["check", "--config.file", str(path)])) == 0
    assert capsys.readouterr().out == f"{path}: OK, 5 targets, 33 jobs\n"


@pytest.fixture
def exporters():
    made = []

    def make(*args, **kwargs):
        exporter = Exporter(*args, **kwargs)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.server.server_close()


def test_the_exporter_keeps_its_share_through_a_reload(tmp_path, exporters):
    (tmp_path / "new").mkdir()
    config = load_config(write_config(tmp_path, ESTATE), registry.by_name())
    exporter = exporters(config, "127.0.0.1:0", shard=Shard(0, 3))
    assert sorted(r.job_id for r in exporter.runners) == [
        "edge_hosting_provider/edge01", "edge_hosting_provider/fe01", "lync_certificates/edge01", "tls_probe/edge01"]
    document = copy.deepcopy(ESTATE)
    document["targets"].append(target("edge02", "lync_edge"))  # fnv1a_32 0xb84c3ee2 -> shard 2: not this one's
    document["targets"].append(target("edge06", "lync_edge"))  # 0xb44c3896 -> shard 0
    change = exporter.apply(load_config(write_config(tmp_path / "new", document), registry.by_name()))
    assert sorted(spec.id for spec in change.added) == [
        "edge_hosting_provider/edge06", "lync_certificates/edge06", "tls_probe/edge06"]
    assert change.removed == [] and len(change.unchanged) == 4


def test_build_info_says_the_shard(tmp_path, exporters):
    config = load_config(write_config(tmp_path, ESTATE), registry.by_name())
    for shard, expected in ((Shard(2, 3), {"shard": "2", "total_shards": "3"}),
                            (Shard(), {"shard": "0", "total_shards": "1"})):
        exporter = exporters(config, "127.0.0.1:0", shard=shard)
        text = exporter.cache.render().decode()
        (info,) = [f for f in text_string_to_metric_families(text) if f.name == "lync_owa_build_info"]
        assert info.samples[0].labels == {**BUILD.labels(), **expected} and info.samples[0].value == 1
