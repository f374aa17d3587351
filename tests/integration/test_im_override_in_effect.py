"""E3 beyond the configured values, through the real pypsrp client: on Exchange 2016/2019 the IM setting
override is in effect (Get-ExchangeDiagnosticInfo's VariantConfiguration shows the values the server has
loaded), and on every version the IM certificate carries the server's own FQDN."""

from __future__ import annotations

import logging

import pytest

from collectors.config_checks import CONFIG_CHECK_OK
from collectors.contract import FactsBoard
from collectors.im_certificate.collector import ImCertificateCollector
from collectors.sources.remoting import SessionPool
from tests.integration.collector_harness import Job
from tests.integration.owa_im_snapshots import write_scenario

IN_EFFECT = "im_setting_override_in_effect"
# Judged beside it (test_im_override_recycled.py): OWA's worker started after the override changed.
RECYCLED = "owa_app_pool_recycled_after_im_override"
NAMES_SERVER = "im_certificate_names_server"

pytestmark = pytest.mark.usefixtures("password_env")

# An Export-Clixml file whose Result is text, but not XML.
NOT_XML_ANSWER = """<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">
  <Obj RefId="0">
    <TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>
    <MS><S N="Server">EX02</S><S N="Result">Process MSExchangeMailboxAssistants is not running &lt;</S></MS>
  </Obj>
</Objs>
"""


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def checks(sim, tmp_path, sessions, target: str) -> dict[str, float]:
    job = Job(sim, tmp_path, ImCertificateCollector(), target, sessions=sessions, facts=FactsBoard())
    status = job.run()
    assert status.up, status.last_error
    return {labels[0]: value for labels, value in job.values(CONFIG_CHECK_OK.name).items()}


def test_healthy_override_in_effect_and_names(sim, tmp_path, sessions):
    # Exchange 2013 keeps its IM settings in web.config: no override to be in effect.
    assert checks(sim, tmp_path, sessions, "ex01") == {NAMES_SERVER: 1}
    assert checks(sim, tmp_path, sessions, "ex02") == {NAMES_SERVER: 1, IN_EFFECT: 1, RECYCLED: 1}


def test_override_changed_but_not_refreshed(sim, tmp_path, sessions):
    sim.set_scenario("im-override-not-refreshed")
    # The configured values are fine (the renewed certificate): only the loaded ones lag behind.
    assert checks(sim, tmp_path, sessions, "ex02") == {NAMES_SERVER: 1, IN_EFFECT: 0, RECYCLED: 1}
    assert checks(sim, tmp_path, sessions, "ex01") == {NAMES_SERVER: 1}


def test_certificate_without_the_server_fqdn(sim, tmp_path, sessions):
    sim.set_scenario("im-cert-lacks-server-name")
    assert checks(sim, tmp_path, sessions, "ex02") == {NAMES_SERVER: 0, IN_EFFECT: 1, RECYCLED: 1}
    assert checks(sim, tmp_path, sessions, "ex01") == {NAMES_SERVER: 1}


def test_loaded_settings_without_im_settings_are_not_in_effect(sim, tmp_path, sessions):
    # A server that has loaded nothing for OwaServer/IMSettings (a new override never refreshed).
    sim.set_scenario(write_scenario(tmp_path, "never-refreshed", """hosts:
  ex02.contoso.com:
    exchange:
      loaded_im_settings: {server_name: null, certificate_thumbprint: null}
"""))
    assert checks(sim, tmp_path, sessions, "ex02") == {NAMES_SERVER: 1, IN_EFFECT: 0, RECYCLED: 1}


def test_an_unreadable_answer_leaves_the_check_out_and_says_why(sim, tmp_path, sessions, caplog):
    # The answer's shape has no capture: one the check cannot read must not cost the other E3 checks.
    (tmp_path / "diagnostic-not-xml.xml").write_text(NOT_XML_ANSWER)
    sim.set_scenario(write_scenario(tmp_path, "diagnostic-not-xml", """hosts:
  ex02.contoso.com:
    replay:
      Get-ExchangeDiagnosticInfo: diagnostic-not-xml.xml
"""))
    with caplog.at_level(logging.WARNING):
        assert checks(sim, tmp_path, sessions, "ex02") == {NAMES_SERVER: 1, RECYCLED: 1}
    assert any("Get-ExchangeDiagnosticInfo -Component VariantConfiguration" in r.getMessage()
               and "not XML" in r.getMessage() for r in caplog.records)
