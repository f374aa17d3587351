"""The causes of a broken verdict, one function per recording rule of ``lync_owa:im_integration_broken``.

Each function reads what its rule reads and decides as its rule decides (alerts/lync-owa.rules.yml;
the rule's comment says why it is what it is). A cause is one series of the rule: a target and a
reason, with the failing checks or settings the data names as ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from exporter.verdict.readings import Readings

# IM initialises at the first sign-in after the pool starts; a recycle at a quiet hour needs this long.
EVENT_112_GRACE_SECONDS = 30 * 60
LYNC_SIP_TLS_PORT = ":5061"


@dataclass(frozen=True)
class Cause:
    reason: str
    target: str
    detail: str = ""


def _failing_checks(readings: Readings, metric: str, checks: tuple[str, ...]) -> dict[str, list[str]]:
    """target -> the named checks that report 0 there, in the given order."""
    failing: dict[str, list[str]] = {}
    for check in checks:
        for one in readings.select(metric, check=check):
            if one.value == 0:
                failing.setdefault(one.target, []).append(check)
    return failing


def _check_rule(reason: str, metric: str, *checks: str) -> Callable[[Readings, float], list[Cause]]:
    """A rule of the shape ``max by (target) (metric{check=~"a|b"} == 0)``: one cause per target."""
    def causes(readings: Readings, now: float) -> list[Cause]:
        return [Cause(reason, target, ", ".join(names))
                for target, names in sorted(_failing_checks(readings, metric, checks).items())]
    causes.__name__ = reason
    return causes


def im_log_folder_missing(readings: Readings, now: float) -> list[Cause]:
    return [Cause("im_log_folder_missing", one.target)
            for one in readings.select("lync_owa_im_log_folder_present") if one.value == 0]


def no_event_112_since_pool_start(readings: Readings, now: float) -> list[Cause]:
    """The worker started over 30 minutes ago and no Event 112 is newer; a log without any 112 counts
    only while the event reader succeeds, so a failing reader never looks like a missing event."""
    causes = []
    for start in readings.select("lync_owa_app_pool_worker_start_timestamp_seconds"):
        if now - start.value <= EVENT_112_GRACE_SECONDS:
            continue
        event_112 = readings.select("lync_owa_im_initialised_timestamp_seconds", start.target)
        if event_112:
            broken = start.value > event_112[0].value
        else:
            broken = readings.up("owa_events", start.target)
        if broken:
            causes.append(Cause("no_event_112_since_pool_start", start.target))
    return causes


def im_initialisation_failing(readings: Readings, now: float) -> list[Cause]:
    """A failure of some kind newer than the newest Event 112 (which must exist); one cause per kind."""
    causes = []
    for failure in readings.select("lync_owa_im_initialisation_last_failure_timestamp_seconds"):
        event_112 = readings.select("lync_owa_im_initialised_timestamp_seconds", failure.target)
        if event_112 and failure.value > event_112[0].value:
            causes.append(Cause("im_initialisation_failing", failure.target,
                                f"failure {failure.labels.get('reason', '')}"))
    return causes


def owa_app_pool_not_started(readings: Readings, now: float) -> list[Cause]:
    return [Cause("owa_app_pool_not_started", one.target)
            for one in readings.select("lync_owa_app_pool_state", state="Started") if one.value == 0]


def _owa_servers(readings: Readings) -> list[str]:
    """``lync_owa:owa_server``: every target with an owa_app_pool job, whether its runs succeed or not."""
    return readings.targets_with_job("owa_app_pool")


def _organisation_check_rule(reason: str, *checks: str) -> Callable[[Readings, float], list[Cause]]:
    """``lync_owa:owa_server and on (job) (min by (job) (config_check_ok{check=~...}) == 0)``: a check
    failing on any target breaks every OWA server."""
    def causes(readings: Readings, now: float) -> list[Cause]:
        failing = _failing_checks(readings, "lync_owa_config_check_ok", checks)
        if not failing:
            return []
        detail = ", ".join(sorted({f"{check} on {target}" for target, names in failing.items() for check in names}))
        return [Cause(reason, server, detail) for server in _owa_servers(readings)]
    causes.__name__ = reason
    return causes


def lync_pool_unreachable(readings: Readings, now: float) -> list[Cause]:
    """No front end (a target with a lync_topology job) completes a TLS handshake on any :5061 endpoint
    it probes; nothing is judged while none is probed."""
    front_ends = set(readings.targets_with_job("lync_topology"))
    probes = [one for one in readings.select("lync_owa_tls_probe_success")
              if one.target in front_ends and len(one.labels.get("endpoint", "")) > len(LYNC_SIP_TLS_PORT)
              and one.labels["endpoint"].endswith(LYNC_SIP_TLS_PORT)]
    if not probes or max(one.value for one in probes) != 0:
        return []
    detail = ", ".join(sorted({f"{one.labels['endpoint']} from {one.target}" for one in probes}))
    return [Cause("lync_pool_unreachable", server, detail) for server in _owa_servers(readings)]


def lync_pool_certificate_expired(readings: Readings, now: float) -> list[Cause]:
    expired = [one for one in readings.select("lync_owa_lync_certificate_not_after_timestamp_seconds", use="Default")
               if one.value < now]
    if not expired:
        return []
    detail = ", ".join(sorted({f"Default certificate of {one.target}" for one in expired}))
    return [Cause("lync_pool_certificate_expired", server, detail) for server in _owa_servers(readings)]


def hybrid_edges(readings: Readings) -> list[str]:
    """Edges whose checks judge, ``lync_owa_hybrid_applicable == 1``."""
    return sorted({one.target for one in readings.select("lync_owa_hybrid_applicable") if one.value == 1})


def _edge_rule(reason: str, metric: str, detail_label: str = "") -> Callable[[Readings, float], list[Cause]]:
    """``max by (target) (metric == 0) and on (target) (lync_owa_hybrid_applicable == 1)``."""
    def causes(readings: Readings, now: float) -> list[Cause]:
        found = []
        for edge in hybrid_edges(readings):
            failing = [one for one in readings.select(metric, edge) if one.value == 0]
            if failing:
                detail = ", ".join(one.labels[detail_label] for one in failing) if detail_label else ""
                found.append(Cause(reason, edge, detail))
        return found
    causes.__name__ = reason
    return causes


# In the rules file's order. tests/unit/test_verdict_python.py checks that this covers every reason.
RULES: tuple[Callable[[Readings, float], list[Cause]], ...] = (
    im_log_folder_missing,
    no_event_112_since_pool_start,
    _check_rule("im_settings_unreadable", "lync_owa_im_certificate_check_ok", "settings_readable"),
    _check_rule("im_settings_missing", "lync_owa_im_certificate_check_ok",
                "thumbprint_configured", "server_name_configured"),
    _check_rule("im_thumbprint_malformed", "lync_owa_im_certificate_check_ok", "thumbprint_well_formed"),
    _check_rule("im_thumbprint_matches_no_certificate", "lync_owa_im_certificate_check_ok",
                "thumbprint_matches_certificate"),
    _check_rule("im_certificate_unusable", "lync_owa_im_certificate_check_ok",
                "certificate_has_private_key", "certificate_valid_now"),
    _check_rule("im_server_name_not_the_lync_pool", "lync_owa_im_certificate_check_ok", "server_name_matches_pool"),
    _check_rule("im_certificate_lacks_trusted_pool_name", "lync_owa_config_check_ok",
                "im_certificate_names_trusted_pool"),
    _check_rule("im_setting_override_not_in_effect", "lync_owa_config_check_ok", "im_setting_override_in_effect"),
    _check_rule("owa_app_pool_not_recycled_after_im_override", "lync_owa_config_check_ok",
                "owa_app_pool_recycled_after_im_override"),
    _check_rule("owa_trusted_application_port_not_answering", "lync_owa_config_check_ok",
                "owa_trusted_application_port_accepts_tls"),
    _check_rule("im_certificate_not_trusted_by_lync", "lync_owa_config_check_ok", "im_certificate_chains_to_lync_root"),
    im_initialisation_failing,
    _check_rule("ucma_runtime_missing", "lync_owa_config_check_ok", "ucma_registry_value_present", "ucma_dll_present"),
    owa_app_pool_not_started,
    _check_rule("owa_virtual_directory_im_disabled", "lync_owa_config_check_ok",
                "owa_vdir_im_enabled", "owa_vdir_im_type_ocs"),
    _organisation_check_rule("owa_mailbox_policy_im_disabled",
                             "owa_mailbox_policy_im_enabled", "owa_mailbox_policy_im_type_ocs"),
    _organisation_check_rule("owa_trusted_application_missing", "owa_trusted_application_present"),
    _organisation_check_rule("trusted_pool_duplicates_um_server", "trusted_pool_not_duplicating_um"),
    _organisation_check_rule("owa_trusted_pool_registrar_not_the_lync_pool", "owa_trusted_pool_registrar_is_lync_pool"),
    _check_rule("owa_server_not_known_to_lync", "lync_owa_config_check_ok", "owa_server_known_to_lync"),
    lync_pool_unreachable,
    lync_pool_certificate_expired,
    _edge_rule("edge_hosting_provider_missing", "lync_owa_edge_hosting_provider_present"),
    _edge_rule("edge_hosting_provider_misconfigured", "lync_owa_edge_hosting_provider_setting_ok", "setting"),
    _edge_rule("edge_federation_disabled", "lync_owa_edge_federation_enabled"),
    _edge_rule("edge_federation_default_route", "lync_owa_edge_federation_dns_srv_routing"),
)

# Every metric the rules above read, so a test can hold them to the collectors' declarations.
METRICS_READ = frozenset({
    "lync_owa_im_log_folder_present", "lync_owa_app_pool_worker_start_timestamp_seconds",
    "lync_owa_im_initialised_timestamp_seconds", "lync_owa_im_initialisation_last_failure_timestamp_seconds",
    "lync_owa_im_certificate_check_ok", "lync_owa_config_check_ok", "lync_owa_app_pool_state",
    "lync_owa_tls_probe_success", "lync_owa_lync_certificate_not_after_timestamp_seconds",
    "lync_owa_hybrid_applicable", "lync_owa_edge_hosting_provider_present",
    "lync_owa_edge_hosting_provider_setting_ok", "lync_owa_edge_federation_enabled",
    "lync_owa_edge_federation_dns_srv_routing",
    "lync_owa_server_in_maintenance", "lync_owa_server_maintenance_state",
})


def find_causes(readings: Readings, now: float) -> list[Cause]:
    return [cause for rule in RULES for cause in rule(readings, now)]
