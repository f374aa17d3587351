"""The collectors this exporter knows, by name. Adding a collector means adding it here."""

from __future__ import annotations

from collectors.base import Collector
from collectors.cms_replication import CmsReplicationCollector
from collectors.edge_hosting_provider import EdgeHostingProviderCollector
from collectors.exchange_topology import ExchangeTopologyCollector
from collectors.im_certificate import ImCertificateCollector
from collectors.im_log_folder import ImLogFolderCollector
from collectors.lync_certificates import LyncCertificatesCollector
from collectors.lync_topology import LyncTopologyCollector
from collectors.owa_app_pool import OwaAppPoolCollector
from collectors.owa_events import OwaEventsCollector
from collectors.owa_im_settings import OwaImSettingsCollector
from collectors.tls_probe import TlsProbeCollector
from collectors.ucma_runtime import UcmaRuntimeCollector
from exporter.config import CollectorSchema

ALL_COLLECTORS: tuple[Collector, ...] = (
    CmsReplicationCollector(),
    EdgeHostingProviderCollector(),
    OwaAppPoolCollector(),
    UcmaRuntimeCollector(),
    ImCertificateCollector(),
    OwaImSettingsCollector(),
    TlsProbeCollector(),
    LyncCertificatesCollector(),
    LyncTopologyCollector(),
    ExchangeTopologyCollector(),
    ImLogFolderCollector(),
    OwaEventsCollector(),
)


def by_name() -> dict[str, Collector]:
    return {c.name: c for c in ALL_COLLECTORS}


def schema_of(collector: Collector) -> CollectorSchema:
    return CollectorSchema(collector.settings_model, collector.roles)


def schemas() -> dict[str, CollectorSchema]:
    """What the configuration loader validates per-collector settings against."""
    return {c.name: schema_of(c) for c in ALL_COLLECTORS}
