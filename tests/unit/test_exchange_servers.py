"""Pure parts of issue 19 items 13 and 10: an Exchange server's roles and version, who runs both UM
services, and the one version pair Microsoft names unsupported."""

from __future__ import annotations

import pytest

from collectors.sources.lync_versions import as_fact, lync_product
from collectors.sources.normalize import PlainObject
from collectors.topology.exchange_servers import (
    ExchangeServerInfo,
    hosts_owa_im_endpoint,
    read_server,
    runs_both_um_services,
    server_roles,
    server_version,
)
from collectors.topology.version_pairs import unsupported_lync_servers


def server(roles: str, version: str) -> ExchangeServerInfo:
    return read_server({"Fqdn": "EX01.contoso.com", "ServerRole": roles, "AdminDisplayVersion": version})


@pytest.mark.parametrize("value, expected", [
    ("Mailbox, ClientAccess", {"mailbox", "clientaccess"}),  # the E15 capture's ToString
    ("Mailbox", {"mailbox"}),  # the E16 capture's
    (" ClientAccess ", {"clientaccess"}),
    ("", set()),
    (None, set()),
])
def test_server_roles(value, expected):
    assert server_roles(value) == expected


@pytest.mark.parametrize("value, expected", [
    (PlainObject({"Major": 15, "Minor": 1, "Build": 2375, "Revision": 7}, "Version 15.1 (Build 2375.7)"),
     (15, 1, 2375, 7)),
    ({"Major": 15, "Minor": 0, "Build": 1497, "Revision": 2}, (15, 0, 1497, 2)),
    ("Version 15.2 (Build 1118.7)", (15, 2, 1118, 7)),  # the ToString alone
    ({"Major": 15, "Minor": "x"}, None),
    ({"Major": True, "Minor": 0, "Build": 1, "Revision": 1}, None),  # a bool is not a number here
    ("Version 15", None),
    (None, None),
])
def test_server_version(value, expected):
    assert server_version(value) == expected


def test_read_server_names_products_and_builds():
    ex = server("Mailbox, ClientAccess", "Version 15.0 (Build 1497.2)")
    assert (ex.name, ex.product, ex.build) == ("ex01.contoso.com", "2013", "15.0.1497.2")
    assert read_server({"Name": "EX02", "AdminDisplayVersion": "Version 14.3 (Build 123.4)"}).product == ""
    assert read_server({"Name": "EX02"}).build == "" and read_server({"Name": "EX02"}).name == "ex02"


@pytest.mark.parametrize("roles, version, both", [
    ("Mailbox, ClientAccess", "Version 15.0 (Build 1497.2)", True),  # 2013, one computer
    ("Mailbox", "Version 15.0 (Build 1497.2)", False),  # 2013 split: the call router is on the CAS
    ("ClientAccess", "Version 15.0 (Build 1497.2)", False),
    ("Mailbox", "Version 15.1 (Build 2375.7)", True),  # 2016: one role for everything
    ("Mailbox", "Version 15.2 (Build 1118.7)", False),  # 2019: no Unified Messaging
    ("Mailbox", "Version 14.3 (Build 123.4)", None),  # a version this table does not know
    ("Mailbox", "", None),
])
def test_who_runs_both_um_services(roles, version, both):
    assert runs_both_um_services(server(roles, version)) is both


def test_the_im_endpoint_runs_on_mailbox_servers():
    assert hosts_owa_im_endpoint(server("Mailbox", "Version 15.2 (Build 1118.7)"))
    assert not hosts_owa_im_endpoint(server("ClientAccess", "Version 15.0 (Build 1497.2)"))


@pytest.mark.parametrize("version, product", [
    ("5.0.8308.992", "Lync Server 2013"),
    ("6.0.9319.534", "Skype for Business Server 2015"),
    ("7.0.2046.0", ""),  # not named by a Microsoft page this project read: unknown, not guessed
    ("garbage", ""),
    (None, ""),
])
def test_lync_product(version, product):
    assert lync_product(version) == product


def test_versions_fact_keeps_each_replica_once_in_order():
    assert as_fact([("fe02.contoso.com", "6.0.9319.534"), ("edge01.contoso.com", None),
                    ("fe01.contoso.com", "5.0.8308.992"), ("fe02.contoso.com", "5.0.8308.992"), ("", "1.0")]) == (
        ("fe01.contoso.com", "5.0.8308.992"), ("fe02.contoso.com", "6.0.9319.534"))


LYNC_2013 = (("fe01.contoso.com", "5.0.8308.992"), ("fe02.contoso.com", "6.0.9319.534"))


@pytest.mark.parametrize("exchange, unsupported", [
    ((15, 0, 1497, 2), []),  # Exchange 2013 with Lync Server 2013: 001's own setup
    ((15, 1, 2375, 7), ["fe01.contoso.com (Lync Server 2013)"]),
    ((15, 2, 1118, 7), ["fe01.contoso.com (Lync Server 2013)"]),
])
def test_only_lync_2013_with_exchange_2016_or_later_is_unsupported(exchange, unsupported):
    assert unsupported_lync_servers(exchange, LYNC_2013) == unsupported
    assert unsupported_lync_servers(exchange, (("fe02.contoso.com", "6.0.9319.534"),)) == []
