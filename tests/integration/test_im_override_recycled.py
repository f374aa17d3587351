"""E3 on Exchange 2016/2019, through the real pypsrp client: OWA's worker (w3wp.exe of MSExchangeOWAAppPool)
started after the IM setting override in use last changed (a refresh without the pool restart leaves OWA on
the old values). The override's WhenChangedUTC is also read in the form a real server sends it: the E19
capture, turned into an IM override, replayed through the simulator."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from collectors.config_checks import CONFIG_CHECK_OK
from collectors.contract import FactsBoard
from collectors.im_certificate.collector import ImCertificateCollector
from collectors.im_certificate.metrics import CERT_USE
from collectors.sources.remoting import SessionPool
from tests.integration.collector_harness import Job
from tests.integration.owa_im_snapshots import write_scenario

RECYCLED = "owa_app_pool_recycled_after_im_override"
IN_EFFECT = "im_setting_override_in_effect"

pytestmark = pytest.mark.usefixtures("password_env")


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


def im_thumbprint(sim, tmp_path, sessions, target: str) -> str:
    """The certificate the target's IM settings name, as the collector exported it."""
    job = Job(sim, tmp_path, ImCertificateCollector(), target, sessions=sessions, facts=FactsBoard())
    assert job.run().up
    (thumbprint,) = [labels[0] for labels in job.values(CERT_USE.name) if labels[1] == "im"]
    return thumbprint


def timed(tmp_path: Path, name: str, override_changed: str, worker_started: str) -> Path:
    """healthy, with the IM override changed and ex02's OWA worker started at the given scenario times."""
    return write_scenario(tmp_path, name, f"""exchange_org:
  setting_overrides:
    IM Settings:
      changed: {override_changed}
hosts:
  ex02.contoso.com:
    windows:
      processes:
        owa-w3wp:
          started: {worker_started}
""")


def test_healthy_worker_started_after_the_override_changed(sim, tmp_path, sessions):
    # healthy: the override changed 30 days before the estate started; ex02's worker started 26 hours ago.
    assert checks(sim, tmp_path, sessions, "ex02")[RECYCLED] == 1
    # Exchange 2013 keeps its IM settings in web.config: nothing to judge.
    assert RECYCLED not in checks(sim, tmp_path, sessions, "ex01")


def test_refreshed_but_not_recycled(sim, tmp_path, sessions):
    sim.set_scenario("override-not-recycled")
    found = checks(sim, tmp_path, sessions, "ex02")
    # The server has loaded the new values (refreshed); OWA's worker predates the change.
    assert found[IN_EFFECT] == 1
    assert found[RECYCLED] == 0
    assert RECYCLED not in checks(sim, tmp_path, sessions, "ex01")


@pytest.mark.parametrize(("changed", "started", "recycled"), [
    ("-2h", "-1h", 1),           # restarted after the change
    ("-2h", "-2h4m", 1),         # 4 minutes before: within the 5 minutes for two servers' clocks
    ("-2h", "-2h10m", 0),        # 10 minutes before: the worker did not read the change
    ("-30m", "-26h", 0),
])
def test_worker_start_against_the_change_with_the_clock_tolerance(sim, tmp_path, sessions, changed, started,
                                                                   recycled):
    sim.set_scenario(timed(tmp_path, "timed", changed, started))
    assert checks(sim, tmp_path, sessions, "ex02")[RECYCLED] == recycled


def test_no_worker_running_is_not_judged(sim, tmp_path, sessions):
    # IIS starts a worker at the next request, which reads the current values: nothing stale runs.
    sim.set_scenario(write_scenario(tmp_path, "no-owa-worker", """exchange_org:
  setting_overrides:
    IM Settings:
      changed: -1h
hosts:
  ex02.contoso.com:
    windows:
      processes:
        owa-w3wp:
          command_line: c:\\windows\\system32\\inetsrv\\w3wp.exe -ap "MSExchangeECPAppPool" -v "v4.0"
"""))
    found = checks(sim, tmp_path, sessions, "ex02")
    assert RECYCLED not in found and found[IN_EFFECT] == 1


def _capture_as_im_override(capture: str, thumbprint_ref: str, changed: dt.datetime | None) -> str:
    """The real E19 Get-SettingOverride object, made an organisation-wide IM override (component, section,
    parameters), its change times kept as captured or set to ``changed``."""
    text = capture.replace('<S N="ComponentName">Cafe</S>', '<S N="ComponentName">OwaServer</S>')
    text = text.replace('<S N="SectionName">HttpRequestFiltering</S>', '<S N="SectionName">IMSettings</S>')
    text = text.replace("<S>Enabled=True</S>",
                        f"<S>IMServerName=pool01.contoso.com</S><S>IMCertificateThumbprint={thumbprint_ref}</S>")
    if changed is not None:
        utc = changed.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = re.sub(r'<DT N="WhenChanged">[^<]*</DT>', f'<DT N="WhenChanged">{utc}</DT>', text)
        text = re.sub(r'<DT N="WhenChangedUTC">[^<]*</DT>', f'<DT N="WhenChangedUTC">{utc}</DT>', text)
    assert text.count("IMSettings") == 1 and "OwaServer" in text
    return text


@pytest.mark.parametrize(("hours_ago", "recycled"), [(None, 1), (1, 0)])
def test_a_real_setting_override_objects_change_time(sim, tmp_path, sessions, captures, hours_ago, recycled):
    # The capture's WhenChangedUTC is 2021-11-17T18:31:45Z, long before ex02's worker started (26 hours
    # ago); set to an hour ago, after it. The thumbprint is the one healthy's ex02 has loaded, read from a
    # healthy run's answer, so only the change time differs between the two cases.
    capture = (captures / "E19" / "GetSettingOverride.xml").read_text(encoding="utf-8-sig")
    changed = None if hours_ago is None else dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours_ago)
    thumbprint = im_thumbprint(sim, tmp_path, sessions, "ex02")
    (tmp_path / "im-override.xml").write_text(_capture_as_im_override(capture, thumbprint, changed))
    sim.set_scenario(write_scenario(tmp_path, "real-override", """hosts:
  ex02.contoso.com:
    replay:
      Get-SettingOverride: im-override.xml
"""))
    assert checks(sim, tmp_path, sessions, "ex02")[RECYCLED] == recycled
