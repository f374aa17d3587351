"""Replay: a scenario names, per host, ``replay: {Cmdlet: capture.xml}`` and the host answers that cmdlet
with the capture's objects in wire form (simulator/replay.py, simulator/clixml.py).

Values asserted here were read by hand in the capture files (../shared/captures/exchange).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.cli import run_simulator
from simulator.clixml import CaptureError, load_capture
from simulator.scenario import ScenarioError, load_scenario
from simulator.server import Simulator
from tests.simulator.helpers import (
    EX01,
    EX02,
    FE01,
    PASSWORD,
    USER,
    error_ids,
    pool_for,
    props,
    run,
)

# E16/GetExchangeCertificate.xml, first object: the start of <BA N="RawData"> and the thumbprint its
# <ToString> shows ("[Thumbprint]_x000D__x000A_  92E1...").
E16_FIRST_RAWDATA_START = "MIIDKTCCAhGgAwIBAgIQEzJQxCfGVKdLfhOAm55n"
E16_THUMBPRINTS = ["92E196F3C8D3D753FCFC5B7690C3173AA1C0ABE3", "823884A32609DCDC8C4B5462952586C30D814073",
                   "A60C6E62FF85D208DF668D597A1B077E1534147F"]
# wire/GetExchangeCertificateBroken.xml: the five thumbprints of its ToStrings.
WIRE_THUMBPRINTS = ["8BFE845E6DCA42BBDC8F872672CDA1A4E0C3EBF1", "D003810EBE1624145889D031FBB77ED2BD280FD3",
                    "2759456DC53C76E3DED093B567B6D8DAA42C0ADD", "63F480EA98F26E6F8AE7BB5311B33BB2C692D3CA",
                    "FE0FAE9305F294F49DD2426AB214CC17853A7E87"]


def rel(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


@pytest.fixture(scope="module")
def replay_dir(captures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An administrator's folder: a scenario file whose replay paths are relative to it."""
    folder = tmp_path_factory.mktemp("admin")
    (folder / "my-estate.yaml").write_text(f"""
# Replay what my own servers answered (Export-Clixml files, paths relative to this file).
base: healthy
description: replayed answers
hosts:
  {EX01}:
    replay:
      Get-ExchangeCertificate: {rel(captures / "E16" / "GetExchangeCertificate.xml", folder)}
      Get-ExchangeServer: {rel(captures / "E15" / "GetExchangeServer.xml", folder)}
      Get-ServerComponentState: {rel(captures / "E15" / "GetServerComponentState.xml", folder)}
      Get-WinEvent: {rel(captures / "E16" / "GetWinEventApplication.xml", folder)}
  {EX02}:
    replay:
      Get-SettingOverride: {rel(captures / "E19" / "GetSettingOverride.xml", folder)}
      Get-ExchangeCertificate: {rel(captures / "wire" / "GetExchangeCertificateBroken.xml", folder)}
""")
    return folder


@pytest.fixture(scope="module")
def replay_sim(replay_dir: Path) -> Iterator[Simulator]:
    simulator = Simulator(scenario=replay_dir / "my-estate.yaml", username=USER, password=PASSWORD)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def ex01_replayed(replay_sim: Simulator):
    with pool_for(replay_sim, EX01, exchange=True) as pool:
        yield pool


@pytest.fixture(scope="module")
def ex02_replayed(replay_sim: Simulator):
    with pool_for(replay_sim, EX02, exchange=True) as pool:
        yield pool


def test_replayed_certificates_are_the_captured_der(ex01_replayed):
    output = run(ex01_replayed, "Get-ExchangeCertificate").output
    assert len(output) == 3
    first = output[0]
    raw = first.adapted_properties["RawData"]
    assert base64.b64encode(raw).decode().startswith(E16_FIRST_RAWDATA_START)
    assert [hashlib.sha1(o.adapted_properties["RawData"]).hexdigest().upper() for o in output] == E16_THUMBPRINTS
    # Type names as they travel (the capture's, no "Deserialized."), capture-only notes gone.
    assert first.types == ["Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",
                           "System.Security.Cryptography.X509Certificates.X509Certificate2",
                           "System.Security.Cryptography.X509Certificates.X509Certificate", "System.Object"]
    assert list(first.extended_properties) == ["SerializationData"]
    assert str(first).startswith("[Subject]\r\n  CN=Microsoft Exchange Server Auth Certificate\r\n")


def test_replay_answers_whatever_the_parameters(ex01_replayed):
    ps = run(ex01_replayed, "Get-ExchangeCertificate", Thumbprint="00" * 20, Server="EX99", NoSuchParameter=1)
    assert not ps.had_errors and len(ps.output) == 3


def test_the_wire_capture_drops_its_deserialized_prefix(ex02_replayed):
    output = run(ex02_replayed, "Get-ExchangeCertificate").output
    assert [hashlib.sha1(o.adapted_properties["RawData"]).hexdigest().upper() for o in output] == WIRE_THUMBPRINTS
    assert output[0].types[0] == "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate"
    assert all(o.extended_properties == {} for o in output)  # PSComputerName, RunspaceId... removed


def test_replayed_setting_override(ex02_replayed):
    (override,) = run(ex02_replayed, "Get-SettingOverride").output
    p = props(override)
    assert (p["ComponentName"], p["SectionName"], p["Name"]) == ("Cafe", "HttpRequestFiltering", "DisablingAMSIScan")
    (raw,) = p["Parameters"].property_sets
    assert raw == "<LST><S>Enabled=True</S></LST>"
    assert p["Server"] is None and str(p["Status"]) == "Accepted" and p["Status"].property_sets == [3]
    assert p["WhenChanged"] == "2021-11-17T19:31:45+01:00"  # no fraction, the file's offset
    assert str(p["Identity"]) == "DisablingAMSIScan" and str(p["Id"]) == "DisablingAMSIScan"


def test_replayed_cmdlets_the_simulator_does_not_implement(ex01_replayed, replay_sim):
    (server,) = run(ex01_replayed, "Get-ExchangeServer").output
    assert server.types[0] == "Microsoft.Exchange.Data.Directory.Management.ExchangeServer"
    states = run(ex01_replayed, "Get-ServerComponentState", Identity="EX01").output
    assert len(states) == 26
    (monitoring,) = [s for s in states if props(s)["Component"] == "Monitoring"]
    # A DateTime inside a list item, kept as written: 6 fraction digits, "Z".
    assert '<DT N="Timestamp">2021-06-08T16:05:52.303975Z</DT>' in monitoring._xml
    # An Exchange cmdlet: on /PowerShell only.
    with pool_for(replay_sim, EX01) as windows:
        assert error_ids(run(windows, "Get-ExchangeServer")) == ["CommandNotFoundException"]


def test_replayed_windows_cmdlet_keeps_its_endpoint(replay_sim):
    with pool_for(replay_sim, EX01) as pool:
        (config,) = run(pool, "Get-WinEvent", LogName="Application").output  # any parameters: the capture
        p = props(config)
        assert config.types[0] == "System.Diagnostics.Eventing.Reader.EventLogConfiguration"
        assert p["LogName"] == "Application" and p["RecordCount"] == 21809
        assert p["LastAccessTime"] == "2020-10-30T08:24:46.7355382-07:00"  # 7 digits, -07:00, as written
    with pool_for(replay_sim, FE01) as pool:  # not replayed there: the simulator's own events
        assert run(pool, "Get-WinEvent", LogName="Lync Server").output


def test_the_other_cmdlets_still_answer_natively(replay_sim):
    with pool_for(replay_sim, EX02, exchange=True) as pool:
        assert run(pool, "Get-OwaVirtualDirectory", Server="EX02").output


# ------------------------------------------------------------ scenario files and their errors


def test_base_and_paths_are_relative_to_each_file(captures, tmp_path):
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "common.yaml").write_text(f"""
base: healthy
hosts:
  {EX01}:
    replay:
      Get-SettingOverride: {rel(captures / "E19" / "GetSettingOverride.xml", tmp_path / "parent")}
""")
    (tmp_path / "child.yaml").write_text(f"""
base: parent/common.yaml
hosts:
  {EX02}:
    replay:
      Get-SettingOverride: {rel(captures / "E19" / "GetSettingOverride.xml", tmp_path)}
""")
    scenario = load_scenario(tmp_path / "child.yaml")
    assert set(scenario.replays) == {EX01, EX02}
    assert scenario.replays[EX01]["get-settingoverride"][1].path.resolve() == (captures / "E19" / "GetSettingOverride.xml").resolve()


@pytest.mark.parametrize(("content", "expected"), [
    (None, "cannot read the capture"),
    ("hello, not xml", "not XML, so not an Export-Clixml file"),
    ('<?xml version="1.0"?><Objects><Object/></Objects>', "not CLIXML: the root element is <Objects>"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
     '<Objs xmlns="http://schemas.microsoft.com/powershell/2004/04"><S>&b;</S></Objs>', "refused hostile XML"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
     '<Objs xmlns="http://schemas.microsoft.com/powershell/2004/04"><S>&e;</S></Objs>', "refused hostile XML"),
    ('<Objs xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj RefId="0"><TNRef RefId="9"/></Obj></Objs>',
     "<TNRef RefId='9'> names no <TN>"),
    ('<Objs xmlns="http://schemas.microsoft.com/powershell/2004/04"><Weird/></Objs>', "unknown CLIXML element <Weird>"),
])
def test_a_bad_capture_is_one_clear_error_naming_the_file_and_the_key(tmp_path, content, expected):
    capture = tmp_path / "bad.xml"
    if content is not None:
        capture.write_text(content)
    (tmp_path / "bad.yaml").write_text(f"base: healthy\nhosts:\n  {EX01}:\n    replay:\n"
                                       f"      Get-ExchangeCertificate: bad.xml\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "bad.yaml")
    message = str(err.value)
    assert message.startswith(f"bad.yaml (base healthy.yaml): hosts.{EX01}.replay.Get-ExchangeCertificate: ")
    assert str(capture) in message and expected in message
    assert "\n" not in message


def test_a_replay_key_must_be_a_cmdlet_and_a_path(tmp_path):
    (tmp_path / "a.yaml").write_text(f"base: healthy\nhosts:\n  {EX01}:\n    replay:\n      not a cmdlet: x.xml\n")
    with pytest.raises(ScenarioError, match=r"replay\.not a cmdlet: not a cmdlet name"):
        load_scenario(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(f"base: healthy\nhosts:\n  {EX01}:\n    replay:\n      Get-Foo: [1]\n")
    with pytest.raises(ScenarioError, match=r"replay\.Get-Foo: the path of an Export-Clixml file"):
        load_scenario(tmp_path / "b.yaml")


def test_capture_size_is_bounded(tmp_path, monkeypatch):
    import simulator.clixml as clixml

    capture = tmp_path / "big.xml"
    capture.write_text('<Objs xmlns="http://schemas.microsoft.com/powershell/2004/04"><S>x</S></Objs>')
    monkeypatch.setattr(clixml, "MAX_CAPTURE_BYTES", 10)
    with pytest.raises(CaptureError, match="more than the 10 a capture may have"):
        load_capture(capture)


def test_simulate_takes_a_scenario_file_and_reports_a_bad_one(replay_dir, tmp_path, capsys):
    (tmp_path / "broken.yaml").write_text(f"base: healthy\nhosts:\n  {EX01}:\n    replay:\n"
                                          f"      Get-ExchangeCertificate: missing.xml\n")
    assert run_simulator(str(tmp_path / "broken.yaml"), "127.0.0.1:0", False, USER, PASSWORD) == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "replay.Get-ExchangeCertificate" in err and "missing.xml" in err

    stop = threading.Event()
    out: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    worker = threading.Thread(target=run_simulator, args=(str(replay_dir / "my-estate.yaml"), "127.0.0.1:0", False,
                                                          USER, PASSWORD, Lines(), stop))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not any("scenario my-estate" in line for line in out) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("scenario my-estate" in line for line in out)
    finally:
        stop.set()
        worker.join(30)
