"""Check L1: Central Management Store replication, from a Lync front end.

``Get-CsManagementStoreReplicationStatus`` answers one ReplicaState per replica (front ends,
Edge servers, ...). A replica that is not up to date, or that stopped reporting, means that
topology and configuration changes (the OWA trusted application, the Edge's hosting provider)
no longer reach it.
"""

from __future__ import annotations

from collectors.base import CollectContext, Collector, MetricSpec, Sample
from exporter.normalize import Field, Shape

CMDLET = "Get-CsManagementStoreReplicationStatus"

REPLICA_STATE = Shape(
    CMDLET,
    (
        Field("ReplicaFqdn", "str"),
        Field("UpToDate", "bool"),
        Field("LastStatusReport", "datetime", nullable=True),
        Field("LastUpdateCreation", "datetime", nullable=True),
        Field("ProductVersion", "str", required=False, nullable=True),
    ),
)

UP_TO_DATE = MetricSpec(
    "lync_owa_cms_replica_up_to_date",
    "gauge",
    "1 when the CMS replica reports that it is up to date (Get-CsManagementStoreReplicationStatus UpToDate).",
    ("replica",),
)
LAST_STATUS_REPORT = MetricSpec(
    "lync_owa_cms_replica_last_status_report_timestamp_seconds",
    "gauge",
    "When the replica last reported its status to the CMS master (absent while it never did).",
    ("replica",),
)
LAST_UPDATE_CREATION = MetricSpec(
    "lync_owa_cms_replica_last_update_creation_timestamp_seconds",
    "gauge",
    "When the CMS master last created an update for the replica (absent while null).",
    ("replica",),
)
REPLICA_INFO = MetricSpec(
    "lync_owa_cms_replica_info",
    "gauge",
    "Product version reported by each CMS replica; always 1.",
    ("replica", "product_version"),
)


class CmsReplicationCollector(Collector):
    name = "cms_replication"
    roles = frozenset({"lync_frontend"})
    metrics = (UP_TO_DATE, LAST_STATUS_REPORT, LAST_UPDATE_CREATION, REPLICA_INFO)
    cmdlets = (("windows", CMDLET),)

    def collect(self, ctx: CollectContext) -> list[Sample]:
        answer = ctx.run("windows", CMDLET, None, REPLICA_STATE)
        samples: list[Sample] = []
        seen: set[str] = set()
        for replica in answer.objects:
            # FQDNs are case-insensitive; one series per replica however the server spells it.
            fqdn = replica["ReplicaFqdn"].strip().lower()
            if not fqdn or fqdn in seen:
                continue
            seen.add(fqdn)
            samples.append(UP_TO_DATE.sample(1 if replica["UpToDate"] else 0, replica=fqdn))
            if replica["LastStatusReport"] is not None:
                samples.append(LAST_STATUS_REPORT.sample(replica["LastStatusReport"].timestamp(), replica=fqdn))
            if replica["LastUpdateCreation"] is not None:
                samples.append(LAST_UPDATE_CREATION.sample(replica["LastUpdateCreation"].timestamp(), replica=fqdn))
            version = (replica.get("ProductVersion") or "unknown").strip()[:32] or "unknown"
            samples.append(REPLICA_INFO.sample(1, replica=fqdn, product_version=version))
        return samples
