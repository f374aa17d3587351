"""The maintenance check's judgement and settings, on answers shaped as the sources hand them over."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collectors.server_maintenance import (
    ServerMaintenanceSettings,
    component_states,
    service_states,
)

DEFAULTS = ServerMaintenanceSettings()


def components(**states: str) -> list[dict]:
    return [{"Component": name, "State": state, "ServerFqdn": "ex01.contoso.com"} for name, state in states.items()]


def test_a_healthy_server_reads_as_in_service_though_datacenter_components_are_inactive():
    answer = components(ServerWideOffline="Active", HubTransport="Active", OwaProxy="Active",
                        ForwardSyncDaemon="Inactive", ProvisioningRps="Inactive")
    assert component_states(answer, DEFAULTS.exchange_components) == [
        ("HubTransport", "Active", False), ("OwaProxy", "Active", False), ("ServerWideOffline", "Active", False)]


def test_each_default_component_counts_only_in_its_own_states():
    answer = components(ServerWideOffline="Inactive", HubTransport="Inactive", OwaProxy="Draining")
    assert component_states(answer, DEFAULTS.exchange_components) == [
        ("HubTransport", "Inactive", False),  # only Draining counts for transport
        ("OwaProxy", "Draining", False),
        ("ServerWideOffline", "Inactive", True),
    ]


def test_names_and_states_compare_without_case_and_unknown_values_are_bounded():
    answer = components(SERVERWIDEOFFLINE="inactive", OwaProxy="Sleeping\u200b")
    assert component_states(answer, {"ServerWideOffline": ["Inactive"], "OwaProxy": ["Inactive"],
                                     "HubTransport": ["Draining"]}) == [
        ("HubTransport", "missing", False),  # not listed by the server
        ("OwaProxy", "other", False),  # not a ServiceState: a closed set of label values
        ("ServerWideOffline", "Inactive", True),  # spelt as .NET does
    ]


def test_front_end_services_drained_or_stopped():
    answer = [{"Name": "RTCSRV", "Status": "Paused"}, {"Name": "REPLICA", "Status": "Stopped"}]
    assert service_states(answer, DEFAULTS.lync_services, DEFAULTS.lync_statuses) == [("RTCSRV", "Paused", True)]
    assert service_states(answer, ["REPLICA", "RTCSRV", "RTCMEDSRV"], ["Stopped"]) == [
        ("REPLICA", "Stopped", True), ("RTCMEDSRV", "missing", False), ("RTCSRV", "Paused", False)]
    assert service_states([{"Name": "rtcsrv", "Status": "running"}], ["RTCSRV"], DEFAULTS.lync_statuses) == [
        ("RTCSRV", "Running", False)]


def test_default_settings():
    assert DEFAULTS.exchange_components == {"ServerWideOffline": ["Inactive"], "OwaProxy": ["Inactive"],
                                            "HubTransport": ["Draining"]}
    assert (DEFAULTS.lync_services, DEFAULTS.lync_statuses) == (["RTCSRV"], ["Stopped", "StopPending", "Paused",
                                                                           "PausePending"])


@pytest.mark.parametrize("settings, where", [
    ({"exchange_components": {"Owa Proxy": ["Inactive"]}}, "exchange_components"),  # becomes a label: plain names
    ({"exchange_components": {"OwaProxy": ["Active"]}}, "exchange_components"),  # Active is never maintenance
    ({"lync_services": ["RTC*"]}, "lync_services"),  # a cmdlet argument: never a wildcard
    ({"lync_services": []}, "lync_services"),
    ({"lync_statuses": ["Running"]}, "lync_statuses"),
    ({"exchange_server": "ex01; Remove-Item"}, "exchange_server"),
])
def test_bad_settings_are_refused(settings, where):
    with pytest.raises(ValidationError, match=where):
        ServerMaintenanceSettings(**settings)
