"""H2's routing method, read from Get-CsAccessEdgeConfiguration's RoutingMethod (pure part)."""

from __future__ import annotations

import pytest

from collectors.edge_hosting_provider import routes_by_dns_srv


@pytest.mark.parametrize(("value", "expected"), [
    ("UseDnsSrvRouting", True), ("usednssrvrouting ", True), ("\u200eUseDefaultRouting", False),
    ("UseDefaultRouting", False), (None, None), ("", None), ("UseSomethingElse", None), (1, None),
])
def test_routing_method_values(value, expected):
    assert routes_by_dns_srv(value) is expected
