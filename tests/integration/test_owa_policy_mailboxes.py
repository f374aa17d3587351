"""Issue 19 item 8 through the real path: every OWA mailbox policy with IM off is reported with the
mailboxes assigned it (Get-CASMailbox -Filter "OWAMailboxPolicy -eq '<DN>'" over the real pypsrp client),
bounded and cached; the default policy stays the verdict's."""

from __future__ import annotations

import pytest

from collectors.owa_im_settings import OwaImSettingsCollector
from collectors.sources.remoting import SessionPool
from tests.integration.collector_harness import Job
from tests.integration.owa_im_snapshots import write_scenario

pytestmark = pytest.mark.usefixtures("password_env")

CHECK = "owa_mailbox_policies_im_off_unassigned"
COUNT = "lync_owa_mailbox_policy_im_off_mailboxes"
CAPPED = "lync_owa_mailbox_policy_im_off_mailboxes_capped"


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def job(sim, tmp_path, sessions, settings=None, target="ex01") -> Job:
    return Job(sim, tmp_path, OwaImSettingsCollector(), target, settings, sessions=sessions)


def exported(one: Job) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    status = one.run()
    assert status.up, status.last_error
    checks = {labels[0]: value for labels, value in one.values("lync_owa_config_check_ok").items()}
    counts = {labels[0]: value for labels, value in one.values(COUNT).items()}
    capped = {labels[0]: value for labels, value in one.values(CAPPED).items()}
    return checks, counts, capped


def test_healthy_has_no_policy_to_count(sim, tmp_path, sessions):
    checks, counts, capped = exported(job(sim, tmp_path, sessions))
    assert checks[CHECK] == 1 and counts == {} and capped == {}


def test_policies_with_im_off_are_reported_with_their_mailboxes(sim, tmp_path, sessions):
    sim.set_scenario("owa-policy-im-off-assigned")
    one = job(sim, tmp_path, sessions)
    # One count per run (policies_counted_per_run: 1), by name: Contractors (IM off, 42 mailboxes) first.
    checks, counts, capped = exported(one)
    assert counts == {"Contractors": 42} and capped == {"Contractors": 0} and checks[CHECK] == 0
    # Then Kiosk (type None, no mailbox), which harms no one; Contractors' count is kept.
    checks, counts, capped = exported(one)
    assert counts == {"Contractors": 42, "Kiosk": 0} and capped == {"Contractors": 0, "Kiosk": 0}
    assert checks[CHECK] == 0
    # The default policy keeps IM on: the verdict's checks pass.
    assert checks["owa_mailbox_policy_im_enabled"] == 1 and checks["owa_mailbox_policy_im_type_ocs"] == 1


def test_the_count_is_bounded_by_the_limit(sim, tmp_path, sessions):
    sim.set_scenario("owa-policy-im-off-assigned")
    _, counts, capped = exported(job(sim, tmp_path, sessions, {"mailbox_count_limit": 10,
                                                               "policies_counted_per_run": 2}))
    assert counts == {"Contractors": 10, "Kiosk": 0} and capped == {"Contractors": 1, "Kiosk": 0}
    one = job(sim, tmp_path, sessions, {"max_counted_policies": 1, "policies_counted_per_run": 5})
    exported(one)
    assert exported(one)[1] == {"Contractors": 42}  # by name: Contractors before Kiosk


def test_counts_are_kept_between_counting_intervals(sim, tmp_path, sessions):
    sim.set_scenario("owa-policy-im-off-assigned")
    hourly = job(sim, tmp_path, sessions, {"policies_counted_per_run": 5})  # mailbox_count_interval: an hour
    assert exported(hourly)[1] == {"Contractors": 42, "Kiosk": 0}
    often = job(sim, tmp_path, sessions, {"policies_counted_per_run": 5, "mailbox_count_interval": "1ms"})
    assert exported(often)[1] == {"Contractors": 42, "Kiosk": 0}
    sim.set_scenario(write_scenario(tmp_path, "more-contractors", """
exchange_org:
  owa_mailbox_policies:
    Contractors: {instant_messaging_enabled: false, instant_messaging_type: Ocs, mailboxes: 50}
    Kiosk: {instant_messaging_enabled: true, instant_messaging_type: None}
    Interns: {instant_messaging_enabled: false, mailboxes: 7}
"""))
    # Within the hour only the policy that newly turned IM off is counted; past it, every one again.
    assert exported(hourly)[1] == {"Contractors": 42, "Interns": 7, "Kiosk": 0}
    assert exported(often)[1] == {"Contractors": 50, "Interns": 7, "Kiosk": 0}


def test_counting_can_be_turned_off(sim, tmp_path, sessions):
    sim.set_scenario("owa-policy-im-off-assigned")
    checks, counts, _ = exported(job(sim, tmp_path, sessions, {"count_policy_mailboxes": False}))
    assert CHECK not in checks and counts == {}


def test_a_refused_count_leaves_the_policy_uncounted_and_the_run_up(sim, tmp_path, sessions, caplog):
    sim.set_scenario("owa-policy-im-off-assigned")
    sim.set_fault("ex01.contoso.com", "terminating_error", cmdlet="Get-CASMailbox")
    one = job(sim, tmp_path, sessions)
    try:
        checks, counts, _ = exported(one)
    finally:
        sim.clear_faults("ex01.contoso.com")
    assert counts == {} and CHECK not in checks
    assert "counting the mailboxes of OWA mailbox policy CN=Contractors,CN=OWA Mailbox Policies" in caplog.text
    # A policy never counted goes first; the refused one is tried again when nothing else is due.
    assert exported(one)[1] == {"Kiosk": 0}
    checks, counts, _ = exported(one)
    assert counts == {"Contractors": 42, "Kiosk": 0} and checks[CHECK] == 0


@pytest.mark.parametrize("settings, message", [
    ({"mailbox_count_limit": 0}, "greater than or equal to 1"),
    ({"max_counted_policies": 101}, "less than or equal to 100"),
    ({"mailbox_count_interval": "soon"}, "duration"),
])
def test_bad_settings_are_refused_with_their_name(sim, tmp_path, settings, message):
    from exporter.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        job(sim, tmp_path, None, settings)
