"""A snapshot store filled as the collectors would fill it, for the verdict and status page tests:
``healthy()`` is the demo's estate in small (two OWA servers, two front ends, a hybrid Edge)."""

from __future__ import annotations

import time

from collectors import registry
from exporter.state import SnapshotStore
from exporter.verdict.judge import FirstSeen, judge
from exporter.verdict.readings import Readings

NOW = time.time()
HOUR = 3600.0
SPECS = {spec.name: spec for collector in registry.ALL_COLLECTORS for spec in collector.metrics}
IM_CHECKS = ("settings_readable", "thumbprint_configured", "thumbprint_well_formed", "thumbprint_matches_certificate",
             "certificate_has_private_key", "certificate_valid_now", "server_name_configured", "server_name_matches_pool")
EDGE_SETTINGS = ("enabled", "enabled_shared_address_space", "proxy_fqdn")


def sample(metric: str, value: float, **labels: str):
    return SPECS[metric].sample(value, **labels)


class Estate:
    """A snapshot store filled as the collectors would fill it; ``healthy()`` is the demo's estate in small."""

    def __init__(self) -> None:
        self.store = SnapshotStore()
        self.data: dict[tuple[str, str], dict[tuple[str, tuple], float]] = {}
        self.failures: dict[tuple[str, str], tuple[str, str]] = {}

    def set(self, collector: str, target: str, metric: str, value: float | None, **labels: str) -> Estate:
        """Set (or with None drop) one series of a job that succeeds."""
        series = self.data.setdefault((collector, target), {})
        key = (metric, tuple(sorted(labels.items())))
        if value is None:
            series.pop(key, None)
        else:
            series[key] = value
        return self

    def fail(self, collector: str, target: str, kind: str = "auth", message: str = "access denied",
             keep_data: bool = False) -> Estate:
        """The job's last run failed; with ``keep_data`` a run before it succeeded (its data is still served)."""
        if not keep_data:
            self.data.pop((collector, target), None)
        self.failures[(collector, target)] = (kind, message)
        return self

    def never_run(self, collector: str, target: str) -> Estate:
        self.data.pop((collector, target), None)
        self.store.register(collector, target, 60)
        return self

    def rows(self, now: float = NOW, first_seen: FirstSeen | None = None) -> dict:
        return {row.title: row for row in judge(self.readings(), now, first_seen)}

    def readings(self) -> Readings:
        for (collector, target), series in self.data.items():
            self.store.register(collector, target, 60)
            samples = [sample(metric, value, **dict(labels)) for (metric, labels), value in series.items()]
            self.store.record_success(collector, target, samples, 0.1)
        for (collector, target), (kind, message) in self.failures.items():
            if (collector, target) not in self.data:
                self.store.register(collector, target, 60)
            self.store.record_failure(collector, target, kind, message, 0.1)
        return Readings.from_store(self.store)


def healthy() -> Estate:
    estate = Estate()
    for ex in ("ex01", "ex02"):
        for state in ("Started", "Stopped"):
            estate.set("owa_app_pool", ex, "lync_owa_app_pool_state", 1 if state == "Started" else 0, state=state)
        estate.set("owa_app_pool", ex, "lync_owa_app_pool_worker_start_timestamp_seconds", NOW - 2 * HOUR)
        estate.set("owa_events", ex, "lync_owa_im_initialised_timestamp_seconds", NOW - 2 * HOUR + 60)
        # No IM initialisation failure was ever seen: no failure time (docs/metrics.md, "Never seen").
        for check in IM_CHECKS:
            estate.set("im_certificate", ex, "lync_owa_im_certificate_check_ok", 1, check=check)
        estate.set("im_log_folder", ex, "lync_owa_im_log_folder_present", 1)
        estate.set("im_certificate", ex, "lync_owa_config_check_ok", 1, check="im_certificate_names_trusted_pool")
        for check in ("ucma_registry_value_present", "ucma_dll_present"):
            estate.set("ucma_runtime", ex, "lync_owa_config_check_ok", 1, check=check)
        for check in ("owa_vdir_im_enabled", "owa_vdir_im_type_ocs", "owa_mailbox_policy_im_enabled",
                      "owa_mailbox_policy_im_type_ocs"):
            estate.set("owa_im_settings", ex, "lync_owa_config_check_ok", 1, check=check)
        estate.set("server_maintenance", ex, "lync_owa_server_in_maintenance", 0)
        estate.set("tls_probe", ex, "lync_owa_tls_probe_success", 1, endpoint=f"{ex}.contoso.com:443")
    for fe in ("fe01", "fe02"):
        for check in ("owa_trusted_application_present", "trusted_pool_not_duplicating_um",
                      "owa_trusted_pool_registrar_is_lync_pool"):
            estate.set("lync_topology", fe, "lync_owa_config_check_ok", 1, check=check)
        for endpoint in (f"{fe}.contoso.com:5061", "pool01.contoso.com:5061"):
            estate.set("tls_probe", fe, "lync_owa_tls_probe_success", 1, endpoint=endpoint)
        estate.set("lync_certificates", fe, "lync_owa_lync_certificate_not_after_timestamp_seconds", NOW + 300 * 86400,
                   use="Default", thumbprint="AB" * 20, subject_cn=f"{fe}.contoso.com")
    estate.set("edge_hosting_provider", "edge01", "lync_owa_hybrid_applicable", 1)
    estate.set("edge_hosting_provider", "edge01", "lync_owa_edge_hosting_provider_present", 1)
    for setting in EDGE_SETTINGS:
        estate.set("edge_hosting_provider", "edge01", "lync_owa_edge_hosting_provider_setting_ok", 1, setting=setting)
    estate.set("edge_hosting_provider", "edge01", "lync_owa_edge_federation_enabled", 1)
    estate.set("edge_hosting_provider", "edge01", "lync_owa_edge_federation_dns_srv_routing", 1)
    return estate
