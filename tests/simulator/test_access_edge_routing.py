"""Get-CsAccessEdgeConfiguration as Microsoft documents its two shapes, over the real pypsrp client: DNS SRV
routing (DisplayAccessEdgeSettingsDnsSrvRouting, with BeClearingHouse and EnablePartnerDiscovery) and a
default route (DisplayAccessEdgeSettingsDefaultRoute, with VerificationLevel and IsPublicProvider)."""

from __future__ import annotations

from tests.simulator.helpers import props, run

_EDGE = "Microsoft.Rtc.Management.WritableConfig.Settings.Edge"


def test_dns_srv_routing_shape(sim, edge_pool):
    sim.set_scenario("healthy")
    (config,) = run(edge_pool, "Get-CsAccessEdgeConfiguration", LocalStore=None).output
    assert config.types[0] == f"{_EDGE}.DisplayAccessEdgeSettingsDnsSrvRouting"
    p = props(config)
    assert str(p["RoutingMethod"]) == "UseDnsSrvRouting"
    assert p["BeClearingHouse"] is False and isinstance(p["EnablePartnerDiscovery"], bool)
    assert "DefaultRouteFqdn" not in p and "IsPublicProvider" not in p


def test_default_route_shape(sim, edge_pool):
    sim.set_scenario("edge-default-routing")
    try:
        (config,) = run(edge_pool, "Get-CsAccessEdgeConfiguration", LocalStore=None).output
        assert config.types[0] == f"{_EDGE}.DisplayAccessEdgeSettingsDefaultRoute"
        p = props(config)
        assert str(p["RoutingMethod"]) == "UseDefaultRouting"
        assert p["DefaultRouteFqdn"] == "sipfed.partner.example" and p["IsPublicProvider"] is False
        assert str(p["VerificationLevel"]) == "UseSourceVerification"
        assert "BeClearingHouse" not in p and "EnablePartnerDiscovery" not in p
        assert p["AllowFederatedUsers"] is True
    finally:
        sim.set_scenario("healthy")
