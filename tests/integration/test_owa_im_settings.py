"""Check E6 through the real path: the owa_im_settings collector against the simulated estate.

Client-access OWA virtual directories (Get-OwaVirtualDirectory -Server) and the OWA mailbox
policies (Get-OwaMailboxPolicy) must have IM enabled with type OCS. Each scenario must flip only the
collector's own checks, on the servers it breaks; the E3 collector must not notice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.owa_im_settings import OwaImSettingsCollector
from tests.integration.owa_im_snapshots import (
    Snapshot,
    assert_same,
    assert_untouched,
    healthy_estate,
    run_once,
    snapshot,
    write_scenario,
)

pytestmark = pytest.mark.usefixtures("password_env")

CHECK = "lync_owa_config_check_ok"
POLICY_ENABLED = "lync_owa_mailbox_policy_im_enabled"
POLICY_OCS = "lync_owa_mailbox_policy_im_type_ocs"
E6_CHECKS = ("owa_vdir_im_enabled", "owa_vdir_im_type_ocs", "owa_mailbox_policy_im_enabled",
             "owa_mailbox_policy_im_type_ocs", "owa_backend_vdir_im_not_enabled",
             "owa_mailbox_policies_im_off_unassigned")


def collect(sim, tmp_path: Path, target: str, settings: dict | None = None) -> Snapshot:
    return snapshot(sim, tmp_path, OwaImSettingsCollector(), target, settings)


def checks(exported: Snapshot) -> dict[str, float]:
    return {labels[0]: value for (name, labels), value in exported.items() if name == CHECK}


def policies(exported: Snapshot) -> dict[str, tuple[float, float]]:
    names = {labels[0] for (name, labels) in exported if name == POLICY_ENABLED}
    return {n: (exported[(POLICY_ENABLED, (n,))], exported[(POLICY_OCS, (n,))]) for n in names}


@pytest.fixture
def healthy(sim, tmp_path):
    return healthy_estate(sim, tmp_path)


def test_healthy_every_check_passes(sim, tmp_path):
    for target in ("ex01", "ex02"):
        exported = collect(sim, tmp_path, target)
        # The back-end virtual directories have IM type None, as recommended: they are not judged.
        assert checks(exported) == {check: 1.0 for check in E6_CHECKS}
        assert policies(exported) == {"Default": (1.0, 1.0)}


def test_vdir_im_type_none_flips_one_check_on_ex02_only(sim, tmp_path, healthy):
    sim.set_scenario("owa-im-disabled")
    ex02 = collect(sim, tmp_path, "ex02")
    assert checks(ex02) == {**{check: 1.0 for check in E6_CHECKS}, "owa_vdir_im_type_ocs": 0.0}
    assert_same({**healthy[("ex02", "owa_im_settings")], (CHECK, ("owa_vdir_im_type_ocs",)): 0.0}, ex02)
    assert_untouched(sim, tmp_path, healthy, ("ex02", "owa_im_settings"))


def test_default_policy_im_off_flips_the_policy_checks_everywhere(sim, tmp_path, healthy):
    sim.set_scenario("owa-policy-im-disabled")
    for target in ("ex01", "ex02"):
        exported = collect(sim, tmp_path, target)
        assert checks(exported) == {"owa_vdir_im_enabled": 1.0, "owa_vdir_im_type_ocs": 1.0,
                                    "owa_backend_vdir_im_not_enabled": 1.0,
                                    "owa_mailbox_policies_im_off_unassigned": 1.0,  # the default is the verdict's
                                    "owa_mailbox_policy_im_enabled": 0.0, "owa_mailbox_policy_im_type_ocs": 0.0}
        assert policies(exported) == {"Default": (0.0, 0.0)}
    assert_untouched(sim, tmp_path, healthy, ("ex01", "owa_im_settings"), ("ex02", "owa_im_settings"))


def test_vdir_im_disabled(sim, tmp_path):
    sim.set_scenario(write_scenario(tmp_path, "vdir-im-off", """
hosts:
  ex01.contoso.com:
    exchange:
      owa_virtual_directories:
        owa (Default Web Site):
          instant_messaging_enabled: false
"""))
    assert checks(collect(sim, tmp_path, "ex01")) == {**{c: 1.0 for c in E6_CHECKS}, "owa_vdir_im_enabled": 0.0}


def test_back_end_virtual_directory_is_never_judged(sim, tmp_path):
    sim.set_scenario(write_scenario(tmp_path, "back-end-im-off", """
hosts:
  ex01.contoso.com:
    exchange:
      owa_virtual_directories:
        owa (Exchange Back End):
          instant_messaging_enabled: false
"""))
    assert checks(collect(sim, tmp_path, "ex01")) == {c: 1.0 for c in E6_CHECKS}


def test_back_end_im_enabled_is_a_misconfiguration_on_ex01_only(sim, tmp_path, healthy):
    sim.set_scenario("owa-backend-im-enabled")
    ex01 = collect(sim, tmp_path, "ex01")
    assert checks(ex01) == {**{c: 1.0 for c in E6_CHECKS}, "owa_backend_vdir_im_not_enabled": 0.0}
    assert_untouched(sim, tmp_path, healthy, ("ex01", "owa_im_settings"))
    # Enabled with type None (Exchange's default for a new directory) is not IM on the back end.
    sim.set_scenario(write_scenario(tmp_path, "back-end-enabled-type-none", """
hosts:
  ex01.contoso.com:
    exchange:
      owa_virtual_directories:
        owa (Exchange Back End):
          instant_messaging_enabled: true
          instant_messaging_type: None
"""))
    assert checks(collect(sim, tmp_path, "ex01"))["owa_backend_vdir_im_not_enabled"] == 1.0


def test_other_policies_are_exported_but_only_the_default_is_checked(sim, tmp_path):
    sim.set_scenario(write_scenario(tmp_path, "more-policies", """
exchange_org:
  owa_mailbox_policies:
    Kiosk:
      instant_messaging_enabled: false
      instant_messaging_type: None
    Executives:
      instant_messaging_enabled: true
      instant_messaging_type: Ocs
"""))
    exported = collect(sim, tmp_path, "ex02")
    assert checks(exported) == {c: 1.0 for c in E6_CHECKS}
    assert policies(exported) == {"Default": (1.0, 1.0), "Kiosk": (0.0, 0.0), "Executives": (1.0, 1.0)}
    # Bounded: the default policy always, then by name.
    limited = collect(sim, tmp_path, "ex02", {"max_policies": 2})
    assert policies(limited) == {"Default": (1.0, 1.0), "Executives": (1.0, 1.0)}


def test_no_default_policy_leaves_the_policy_checks_out(sim, tmp_path):
    sim.set_scenario(write_scenario(tmp_path, "no-default-policy", """
exchange_org:
  owa_mailbox_policies:
    Default:
      is_default: false
"""))
    exported = collect(sim, tmp_path, "ex01")
    assert checks(exported) == {"owa_vdir_im_enabled": 1.0, "owa_vdir_im_type_ocs": 1.0,
                                "owa_backend_vdir_im_not_enabled": 1.0, "owa_mailbox_policies_im_off_unassigned": 1.0}
    assert policies(exported) == {"Default": (1.0, 1.0)}


def test_unknown_server_fails_the_run_as_a_command_error(sim, tmp_path):
    status = run_once(sim, tmp_path, OwaImSettingsCollector(), "ex01", {"exchange_server": "ex99.contoso.com"})
    assert not status.up and status.last_error_kind == "command"
