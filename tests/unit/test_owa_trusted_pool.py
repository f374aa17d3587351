"""The OWA trusted application pool's rules from 001, on answers shaped like Get-CsTrustedApplicationPool's."""

from __future__ import annotations

from collectors.im_certificate.trusted_pool_name import names_trusted_pools
from collectors.sources.trusted_pools import TrustedPool, pools_of_server
from collectors.topology.trusted_pool import (
    as_fact,
    registrar_is_lync_pool,
    settings_as_001,
)

POOL = TrustedPool("owa.contoso.com", ("ex01.contoso.com", "ex02.contoso.com"))


def test_registrar_is_compared_without_its_service_id_prefix_or_case():
    pools = [{"Registrar": "Registrar:POOL01.contoso.com"}]
    assert registrar_is_lync_pool(pools, "pool01.contoso.com")
    assert not registrar_is_lync_pool(pools + [{"Registrar": "Registrar:pool02.contoso.com"}], "pool01.contoso.com")
    assert not registrar_is_lync_pool([{"Registrar": None}], "pool01.contoso.com")


def test_settings_are_judged_only_where_the_answer_shows_them():
    assert settings_as_001([{"RequiresReplication": False, "ThrottleAsServer": True, "TreatAsAuthenticated": True}]) == {
        "owa_trusted_pool_requires_no_replication": True,
        "owa_trusted_pool_throttles_as_server": True,
        "owa_trusted_pool_treated_as_authenticated": True,
    }
    assert settings_as_001([{"RequiresReplication": True, "ThrottleAsServer": None}]) == {
        "owa_trusted_pool_requires_no_replication": False}
    assert settings_as_001([]) == {}


def test_the_pools_a_server_is_known_by():
    single = TrustedPool("ex03.contoso.com")
    assert pools_of_server([POOL, single], "EX01.contoso.com") == [POOL]
    assert pools_of_server([POOL, single], "ex03") == [single]  # a short name matches the first label
    assert pools_of_server([POOL], "ex03.contoso.com") == []
    assert as_fact([("owa.contoso.com", ["ex02.contoso.com", "ex01.contoso.com", "ex01.contoso.com"]), ("", [])]) == (
        POOL,)


def test_the_certificate_must_carry_the_pool_name_in_subject_or_san():
    assert names_trusted_pools("mail.contoso.com", ["ex01.contoso.com", "OWA.contoso.com"], [POOL], "ex01.contoso.com")
    assert names_trusted_pools("owa.contoso.com", [], [POOL], "ex01.contoso.com")
    assert names_trusted_pools("mail.contoso.com", ["ex01.contoso.com"], [POOL], "ex01.contoso.com") is False
    # A wildcard name is not the pool's FQDN: 001 asks for that name itself.
    assert names_trusted_pools("mail.contoso.com", ["*.contoso.com"], [POOL], "ex01.contoso.com") is False
    assert names_trusted_pools("mail.contoso.com", [], [POOL], "ex09.contoso.com") is None
