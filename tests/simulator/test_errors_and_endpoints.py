"""How the simulated servers fail: unknown commands, bad parameters, scripts, configurations, JEA."""

from __future__ import annotations

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell

from tests.simulator.helpers import (
    EX01,
    FE01,
    IM_FOLDER,
    error_ids,
    pool_for,
    props,
    run,
)


def test_unknown_cmdlet_is_a_terminating_command_not_found(fe01_pool):
    ps = run(fe01_pool, "Get-Nothing")
    assert ps.had_errors and ps.output == []
    (error,) = ps.streams.error
    assert error.fq_error == "CommandNotFoundException"
    assert str(error).startswith("The term 'Get-Nothing' is not recognized as the name of a cmdlet")


def test_exchange_cmdlets_are_not_on_the_windows_endpoint(ex01_pool):
    assert error_ids(run(ex01_pool, "Get-ExchangeCertificate")) == ["CommandNotFoundException"]


@pytest.mark.parametrize("params, error_id", [
    ({"NoSuchParameter": 1}, "NamedParameterNotFound"),
    ({"MaxEvents": "many"}, "CannotConvertArgumentNoMessage"),
    ({"FilterHashtable": {"LogName": "Application"}, "LogName": "Application"}, "AmbiguousParameterSet"),
    ({"MaxEvents": 0, "LogName": "Application"}, "ParameterArgumentValidationError"),
])
def test_parameter_binding_errors_are_terminating(ex01_pool, params, error_id):
    ps = run(ex01_pool, "Get-WinEvent", **params)
    assert ps.had_errors
    assert error_ids(ps) == [f"{error_id},Microsoft.PowerShell.Commands.GetWinEventCommand"]


def test_parameter_names_match_like_powershell(ex01_pool):
    """Case-insensitive names, unique prefixes and positional arguments bind; ambiguous prefixes fail."""
    ps = run(ex01_pool, "get-winevent", filterhashtable={"LogName": "Application"}, Max=1)
    assert len(ps.output) == 1
    ps = PowerShell(ex01_pool)
    ps.add_cmdlet("Get-Item").add_argument(IM_FOLDER)
    assert props(ps.invoke()[0])["Name"] == "InstantMessaging"
    ps = run(ex01_pool, "Get-ChildItem", Path=IM_FOLDER, F=None)  # -F: File or Filter or Force
    assert error_ids(ps) == ["AmbiguousParameter,Microsoft.PowerShell.Commands.GetChildItemCommand"]


def test_missing_mandatory_parameter(ex01_pool):
    ps = run(ex01_pool, "Get-CimInstance", Filter="Name='w3wp.exe'")
    assert ps.had_errors and error_ids(ps)[0].startswith("MissingMandatoryParameter,")


def test_scripts_are_not_run_on_the_windows_endpoint(fe01_pool):
    ps = PowerShell(fe01_pool)
    ps.add_script("Get-CsSite")
    ps.invoke()
    assert ps.had_errors and error_ids(ps) == ["SimulatorScriptNotSupported"]


def test_several_statements_run_in_order(fe01_pool):
    ps = PowerShell(fe01_pool)
    ps.add_cmdlet("Get-CsSite").add_statement()
    ps.add_cmdlet("Get-CsOAuthConfiguration")
    out = ps.invoke()
    assert [o.types[0].rsplit(".", 1)[-1] for o in out] == ["DisplaySite", "OAuthSettings"]


def test_unknown_configuration_is_a_wsman_fault(sim):
    with pytest.raises(WSManFaultError) as err:
        with pool_for(sim, FE01, configuration="No.Such.Config"):
            pass
    assert err.value.code == 2150858752
    assert "Cannot find the No.Such.Config session configuration" in str(err.value)


def test_exchange_configuration_only_on_the_exchange_path(sim):
    with pytest.raises(WSManFaultError):
        with pool_for(sim, EX01, configuration="Microsoft.Exchange"):  # on /wsman
            pass


def test_jea_endpoint_exposes_only_its_visible_cmdlets(sim):
    with pool_for(sim, FE01, configuration="LyncOwaExporter") as pool:
        assert run(pool, "Get-CsSite").output
        assert error_ids(run(pool, "Get-Service")) == ["CommandNotFoundException"]
        ps = PowerShell(pool)
        ps.add_script("Get-CsSite")
        ps.invoke()
        assert error_ids(ps) == ["ScriptsNotAllowed"]  # JEA endpoints run in no-language mode


def test_pool_survives_errors_and_is_alive(sim):
    before = sim.stats()[FE01]["shells_open"]
    with pool_for(sim, FE01) as pool:
        run(pool, "Get-Nothing")
        assert run(pool, "Get-CsSite").output
        assert pool.is_alive()
        assert sim.stats()[FE01]["shells_open"] == before + 1
    assert sim.stats()[FE01]["shells_open"] == before  # Delete removed the shell
