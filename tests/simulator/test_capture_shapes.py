"""The simulator answers in the shape real Exchange servers answered (../shared/captures/exchange).

For every cmdlet with a capture, the simulator is asked through the real pypsrp client and each
answer object is compared with the capture's objects: type names, ToString, and per property
(adapted and extended) the CLIXML element carrying it, nested objects, lists and enums the same way
(tests/simulator/shapes.py). Capture-only notes (PSComputerName, RunspaceId, PSShowComputerName) are
left out, and type names are compared as they travel (a capture's ``Deserialized.`` prefix is the
receiving client's: simulator/clixml.py). A property the simulator adds or drops fails the test,
which the mutation tests at the end prove.

Versions: Exchange 2013 (E15) answers are compared with the E15 captures, 2016 (E16) with E16; the
only Exchange 2019 capture is Get-SettingOverride (E19), compared with a 2019 server's answer.
Get-ExchangeServer is simulated natively with only the properties the checks read
(simulator/cmdlets/exchange_server.py), so its full shape is compared through replay, which serves any
capture (simulator/replay.py); the native answer's properties are held to the capture's forms below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.server import Simulator
from tests.simulator.helpers import EX01, EX02, PASSWORD, USER, pool_for, run
from tests.simulator.shapes import Document, differences

EX03 = "ex03.contoso.com"  # an Exchange 2016 server, added to the healthy estate here

# Departures from a capture that are not drift, each with its reason. Key: the property path.
ALLOWED = {
    # The captured server had no external URL (Nil); the simulated one has one. The property is a
    # System.Uri, written as <URI> when set and <Nil> when not, on every server.
    "Props.ExternalUrl": ("Nil", "URI"),
}


def _scenario(tmp: Path, captures: Path) -> Path:
    path = tmp / "shapes.yaml"
    path.write_text(f"""
base: healthy
hosts:
  {EX03}:
    roles: [exchange_mailbox, exchange_client_access]
    exchange:
      version: 2016
      build: 15.1.2375.7
      certificates:
        auth:
          subject: CN=Microsoft Exchange Server Auth Certificate
          serial_number: 6FB899454124328A
          not_before: -700d
          not_after: +1125d
          is_self_signed: true
          services: [SMTP]
        self-signed:
          subject: CN=EX03
          is_self_signed: true
          not_before: -300d
          not_after: +1500d
          domains: [EX03, ex03.contoso.com]
          services: [IMAP, POP, IIS, SMTP]
      owa_virtual_directories:
        owa (Default Web Site):
          instant_messaging_type: Ocs
          internal_url: https://mail.contoso.com/owa
          external_url: https://mail.contoso.com/owa
    windows:
      events:
        owa-im-initialised: {{provider: MSExchange OWA, id: 112, time: -1h, message: initialised}}
    replay:
      Get-ExchangeServer: {captures / "E16" / "GetExchangeServer.xml"}
  {EX01}:
    replay:
      Get-ExchangeServer: {captures / "E15" / "GetExchangeServer.xml"}
""")
    return path


@pytest.fixture(scope="module")
def shapes_sim(captures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    simulator = Simulator(scenario=_scenario(tmp_path_factory.mktemp("shapes"), captures), username=USER,
                          password=PASSWORD)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def exchange_pools(shapes_sim: Simulator) -> Iterator[dict]:
    pools = {}
    try:
        for host in (EX01, EX02, EX03):
            context = pool_for(shapes_sim, host, exchange=True)
            pools[host] = (context, context.__enter__())
        yield {host: pool for host, (_, pool) in pools.items()}
    finally:
        for context, _ in pools.values():
            context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def windows_pools(shapes_sim: Simulator) -> Iterator[dict]:
    pools = {}
    try:
        for host in (EX01, EX03):
            context = pool_for(shapes_sim, host)
            pools[host] = (context, context.__enter__())
        yield {host: pool for host, (_, pool) in pools.items()}
    finally:
        for context, _ in pools.values():
            context.__exit__(None, None, None)


def capture_shapes(path: Path) -> list[dict]:
    document = Document.of_file(path)
    return [document.shape(element) for element in document.top_level()]


def answer_shapes(pool, cmdlet: str, **params) -> list[dict]:
    ps = run(pool, cmdlet, **params)
    assert not ps.had_errors and not ps.streams.error, [str(e) for e in ps.streams.error]
    assert ps.output, f"{cmdlet} answered nothing"
    shapes = []
    for obj in ps.output:
        document = Document.of_answer(obj)
        shapes.append(document.shape(document.root))
    return shapes


def assert_same_shape(captured: list[dict], answered: list[dict], label: str) -> None:
    """Every answer object has the shape of the capture's first object (a capture's objects all share
    one shape, checked here too)."""
    reference = captured[0]
    for index, other in enumerate(captured[1:], 1):
        assert differences(reference, other) == [], f"{label}: the capture's objects differ among themselves ({index})"
    problems = [f"answer {i}: {p}" for i, shape in enumerate(answered)
                for p in differences(reference, shape, allowed=ALLOWED)]
    assert problems == [], f"{label}: the simulator's answer departs from the capture:\n" + "\n".join(problems)


EXCHANGE_CASES = [
    # (capture, host, cmdlet, parameters)
    ("E15/GetExchangeCertificate.xml", EX01, "Get-ExchangeCertificate", {}),
    ("E16/GetExchangeCertificate.xml", EX03, "Get-ExchangeCertificate", {}),
    ("E16/GetExchangeCertificate.xml", EX02, "Get-ExchangeCertificate", {}),  # 2019: no capture of its own
    ("E15/GetAuthConfig.xml", EX01, "Get-AuthConfig", {}),
    ("E16/GetAuthConfig.xml", EX03, "Get-AuthConfig", {}),
    ("E15/GetOwaVirtualDirectory.xml", EX01, "Get-OwaVirtualDirectory", {"Server": "EX01"}),
    ("E16/GetOwaVirtualDirectory.xml", EX03, "Get-OwaVirtualDirectory", {"Server": "EX03"}),
    ("E19/GetSettingOverride.xml", EX02, "Get-SettingOverride", {}),
    ("E15/GetExchangeServer.xml", EX01, "Get-ExchangeServer", {"Identity": "EX01"}),
    ("E16/GetExchangeServer.xml", EX03, "Get-ExchangeServer", {}),
    ("E15/GetServerComponentState.xml", EX01, "Get-ServerComponentState", {"Identity": "EX01"}),
    ("E16/GetServerComponentState.xml", EX03, "Get-ServerComponentState", {"Identity": "ex03.contoso.com"}),
    ("E16/GetServerComponentState.xml", EX02, "Get-ServerComponentState", {"Identity": "EX02"}),  # 2019
]


@pytest.mark.parametrize(("capture", "host", "cmdlet", "params"), EXCHANGE_CASES,
                         ids=[f"{c[2]}-{c[1].split('.')[0]}-{c[0].split('/')[0]}" for c in EXCHANGE_CASES])
def test_exchange_answers_have_the_captured_shape(captures, exchange_pools, capture, host, cmdlet, params):
    assert_same_shape(capture_shapes(captures / capture), answer_shapes(exchange_pools[host], cmdlet, **params),
                      f"{cmdlet} on {host} vs {capture}")


@pytest.mark.parametrize(("capture", "host"), [("E16/GetExchangeServer.xml", EX02)])
def test_native_get_exchange_server_keeps_the_captured_forms(captures, exchange_pools, capture, host):
    """ex02 (2019, answering with 2016's shapes) answers natively, not replayed, with a subset of the
    properties: each one it sends has the capture's form (element, types, nested properties), and the
    object the capture's type names and ToString. (ex01 and ex03 replay the captures here.)"""
    (reference,) = capture_shapes(captures / capture)
    for answer in answer_shapes(exchange_pools[host], "Get-ExchangeServer", Identity="EX02"):
        assert set(answer["adapted"]) <= set(reference["adapted"]), set(answer["adapted"]) - set(reference["adapted"])
        assert {"Name", "Fqdn", "ServerRole", "AdminDisplayVersion"} <= set(answer["adapted"])
        subset = {**reference, "adapted": {k: v for k, v in reference["adapted"].items() if k in answer["adapted"]}}
        assert differences(subset, answer, allowed=ALLOWED) == [], f"Get-ExchangeServer on {host} vs {capture}"


@pytest.mark.parametrize(("capture", "host"), [("E15/GetWinEventApplication.xml", EX01),
                                               ("E16/GetWinEventApplication.xml", EX03)])
def test_the_application_log_has_the_captured_shape(captures, windows_pools, capture, host):
    # The captures are Get-WinEvent -ListLog Application (an EventLogConfiguration).
    assert_same_shape(capture_shapes(captures / capture),
                      answer_shapes(windows_pools[host], "Get-WinEvent", ListLog="Application"),
                      f"Get-WinEvent -ListLog Application on {host} vs {capture}")


def test_the_wire_capture_and_the_answer_carry_the_same_certificate_properties(captures, exchange_pools):
    """wire/GetExchangeCertificateBroken.xml is what a client kept of the wire form: RawData only.
    The answer has exactly that property; the capture lacks the SerializationData note only because
    that server's serialized-data signing was misconfigured (CSS-Exchange's test name for this file),
    which the healthy E15/E16 captures show."""
    wire = capture_shapes(captures / "wire" / "GetExchangeCertificateBroken.xml")
    answer = answer_shapes(exchange_pools[EX01], "Get-ExchangeCertificate")
    assert {s["types"][0] for s in wire} == {s["types"][0] for s in answer}
    assert all(s["adapted"] == {"RawData": {"element": "BA"}} for s in wire + answer)


# ------------------------------------------------------------ the comparison catches drift


def test_an_added_property_fails_the_comparison(captures, exchange_pools, monkeypatch):
    from simulator.cmdlets import exchange_objects

    real = exchange_objects.exchange_certificate

    def with_thumbprint(der: bytes, to_string: str):
        obj = real(der, to_string)
        from psrpcore.types import PSNoteProperty

        obj.PSObject.adapted_properties.append(PSNoteProperty("Thumbprint", "00" * 20))
        return obj

    monkeypatch.setattr(exchange_objects, "exchange_certificate", with_thumbprint)
    with pytest.raises(AssertionError, match=r"Props\.Thumbprint: in the simulator's answer, not in the capture"):
        assert_same_shape(capture_shapes(captures / "E15/GetExchangeCertificate.xml"),
                          answer_shapes(exchange_pools[EX01], "Get-ExchangeCertificate"), "mutated")


def test_a_dropped_property_fails_the_comparison(captures, exchange_pools, monkeypatch):
    from simulator.cmdlets import exchange_objects

    real = exchange_objects.ObjectBuilder.ad_object

    def without_guid(self, types, own, **kwargs):
        obj = real(self, types, own, **kwargs)
        obj.PSObject.adapted_properties[:] = [p for p in obj.PSObject.adapted_properties if p.name != "Guid"]
        return obj

    monkeypatch.setattr(exchange_objects.ObjectBuilder, "ad_object", without_guid)
    with pytest.raises(AssertionError, match=r"Props\.Guid: missing from the simulator's answer"):
        assert_same_shape(capture_shapes(captures / "E16/GetAuthConfig.xml"),
                          answer_shapes(exchange_pools[EX03], "Get-AuthConfig"), "mutated")


def test_a_changed_element_fails_the_comparison(captures, exchange_pools, monkeypatch):
    """An enum sent as text (what PowerShell does when the depth runs out) is drift too."""
    from simulator.cmdlets import exchange_objects

    real = exchange_objects.ObjectBuilder.enum

    def as_text(self, type_name, name, value):
        return name if type_name.endswith("SettingOverrideStatus") else real(self, type_name, name, value)

    monkeypatch.setattr(exchange_objects.ObjectBuilder, "enum", as_text)
    with pytest.raises(AssertionError, match=r"Props\.Status: element Obj in the capture, S in the simulator"):
        assert_same_shape(capture_shapes(captures / "E19/GetSettingOverride.xml"),
                          answer_shapes(exchange_pools[EX02], "Get-SettingOverride"), "mutated")
