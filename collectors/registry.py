"""The collectors this exporter knows, by name. Adding a collector means adding its class here.

The registry holds classes, not instances: the runtime makes one instance of each per exporter, so
two exporters in one process (tests, benchmarks) share nothing through a collector.
"""

from __future__ import annotations

from collectors.cms_replication import CmsReplicationCollector
from collectors.contract import Collector
from collectors.edge_hosting_provider import EdgeHostingProviderCollector
from collectors.im_certificate.collector import ImCertificateCollector
from collectors.im_log_folder.collector import ImLogFolderCollector
from collectors.lync_certificates import LyncCertificatesCollector
from collectors.owa_app_pool.collector import OwaAppPoolCollector
from collectors.owa_events.collector import OwaEventsCollector
from collectors.owa_im_settings import OwaImSettingsCollector
from collectors.server_maintenance import ServerMaintenanceCollector
from collectors.tls_probe.collector import TlsProbeCollector
from collectors.topology.exchange_topology import ExchangeTopologyCollector
from collectors.topology.lync_topology import LyncTopologyCollector
from collectors.ucma_runtime import UcmaRuntimeCollector

ALL_COLLECTORS: tuple[type[Collector], ...] = (
    CmsReplicationCollector,
    EdgeHostingProviderCollector,
    OwaAppPoolCollector,
    UcmaRuntimeCollector,
    ImCertificateCollector,
    OwaImSettingsCollector,
    TlsProbeCollector,
    LyncCertificatesCollector,
    LyncTopologyCollector,
    ExchangeTopologyCollector,
    ImLogFolderCollector,
    OwaEventsCollector,
    ServerMaintenanceCollector,
)


def by_name() -> dict[str, type[Collector]]:
    return {c.name: c for c in ALL_COLLECTORS}
