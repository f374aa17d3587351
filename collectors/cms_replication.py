"""Check L1: Central Management Store replication, from a Lync front end.

``Get-CsManagementStoreReplicationStatus`` answers one ReplicaState per replica (front ends,
Edge servers, ...). A replica that is not up to date, or that stopped reporting, means that
topology and configuration changes (the OWA trusted application, the Edge's hosting provider)
no longer reach it.

Two optional views deepen that (settings, both on by default):

- ``-CentralManagementStoreStatus``: the CMS's own view (active master, file transfer and
  replicator agents, heartbeats). Its property names are not documented, so whatever is present is
  exported: the active master as an info metric, the number of active agents per kind, and every
  DateTime (or dictionary of server -> DateTime) as a timestamp.
- The File Transfer Agent's failure events on the front end (log ``Lync Server``, source
  ``LS File Transfer Agent Service``): 1017 when it cannot reach a replica ("Https destination
  unavailable": routing, firewall, port 4443), 1015 when the transfer fails on certificates. Only
  the FTA of the active master writes them; elsewhere "no events" is the normal answer.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pydantic import Field as SettingField
from pydantic import StrictBool

from collectors.contract import (
    CollectContext,
    Collector,
    CollectorSettings,
    Field,
    MetricSpec,
    Sample,
    Shape,
    ShapeError,
)
from collectors.helpers.endpoints import LYNC, WINDOWS
from collectors.helpers.names import fqdn
from collectors.helpers.text import clean_text
from collectors.sources.concurrent_calls import run_together
from collectors.sources.lync_versions import LYNC_SERVER_VERSIONS
from collectors.sources.lync_versions import as_fact as versions_fact
from collectors.sources.normalize import parse_dotnet_datetime

CMDLET = "Get-CsManagementStoreReplicationStatus"
EVENT_CMDLET = "Get-WinEvent"
FTA_LOG = "Lync Server"
FTA_PROVIDER = "LS File Transfer Agent Service"
FTA_EVENT_IDS = (1015, 1017)
# What a CMS status answer may make us export; its properties are fixed by its .NET type.
MAX_STATUS_PROPERTIES = 32
MAX_STATUS_KEYS = 64
# The `property` label of a point in time the CMS status reports: its .NET property (casefolded) -> what
# the time is. Microsoft documents none of these names; a property not listed keeps its name, in snake_case.
STATUS_TIME_LABELS = {
    "lastheartbeats": "last_heartbeat",  # per agent server: when its CMS agent last reported in
}

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
# Undocumented property names: read whatever the object carries.
CMS_STATUS = Shape(CMDLET)
FTA_EVENT = Shape(
    EVENT_CMDLET,
    (
        Field("Id", "int"),
        Field("RecordId", "int", required=False, nullable=True),
        Field("TimeCreated", "datetime", required=False, nullable=True),
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
ACTIVE_MASTER_INFO = MetricSpec(
    "lync_owa_cms_active_master_info",
    "gauge",
    "The active CMS master as this front end sees it (-CentralManagementStoreStatus); always 1.",
    ("active_master",),
)
ACTIVE_AGENTS = MetricSpec(
    "lync_owa_cms_active_agents",
    "gauge",
    "Number of active CMS agents by kind (file_transfer, replicator), from -CentralManagementStoreStatus.",
    ("kind",),
)
STATUS_TIMESTAMP = MetricSpec(
    "lync_owa_cms_status_timestamp_seconds",
    "gauge",
    "Every point in time -CentralManagementStoreStatus reports, by what it is (e.g. last_heartbeat) and the "
    "server it is about.",
    ("property", "server"),
)
FTA_EVENTS = MetricSpec(
    "lync_owa_cms_file_transfer_agent_events_total",
    "counter",
    "File Transfer Agent failure events (1015 certificates, 1017 replica unreachable) written since the exporter "
    "started.",
    ("event_id",),
)
FTA_LAST_SEEN = MetricSpec(
    "lync_owa_cms_file_transfer_agent_event_last_seen_timestamp_seconds",
    "gauge",
    "When the newest File Transfer Agent failure event of the id was written (absent while none was seen).",
    ("event_id",),
)


class CmsReplicationSettings(CollectorSettings):
    # Also read Get-CsManagementStoreReplicationStatus -CentralManagementStoreStatus (Lync 2013 and later).
    central_management_store_status: StrictBool = True
    # Also read the File Transfer Agent's failure events 1015 / 1017.
    file_transfer_agent_events: StrictBool = True
    # How many of the newest FTA events one run reads.
    file_transfer_agent_max_events: int = SettingField(default=50, ge=1, le=1000)


# ------------------------------------------------------------------------------------ CMS status


@dataclass(frozen=True)
class CmsStatus:
    active_master: str | None
    active_agents: dict[str, int]  # kind -> count
    timestamps: list[tuple[str, str, float]]  # (property label, server, unix time)


def _agent_kind(property_name: str) -> str | None:
    key = property_name.casefold()
    if not (key.startswith("active") and key.endswith("agents")):
        return None
    if "filetransfer" in key:
        return "file_transfer"
    if "replicator" in key:
        return "replicator"
    return None


def status_time_label(property_name: str) -> str:
    """The label value for a time the CMS status reports: a known property's meaning, else its name in
    snake_case (LastHeartbeats -> last_heartbeat, SomeNewTime -> some_new_time)."""
    known = STATUS_TIME_LABELS.get(property_name.casefold())
    if known is not None:
        return known
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", property_name)
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_") or "unnamed"


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_dotnet_datetime(value).timestamp()
    except ShapeError:
        return None


def read_cms_status(obj: Mapping[str, Any]) -> CmsStatus:
    """What a CentralManagementStoreStatusResult tells, whatever its property names are."""
    names = sorted(obj)[:MAX_STATUS_PROPERTIES]
    master = None
    for name in names:
        value = obj[name]
        if name.casefold() in ("activemasterfqdn", "activemaster", "masterfqdn") and isinstance(value, str):
            master = fqdn(value) or None
    agents: dict[str, int] = {}
    timestamps: list[tuple[str, str, float]] = []
    for name in names:
        value = obj[name]
        kind = _agent_kind(name)
        if kind is not None and isinstance(value, list):
            agents[kind] = agents.get(kind, 0) + len(value)
        elif isinstance(value, dict):
            for key in sorted(value, key=str)[:MAX_STATUS_KEYS]:
                moment = _timestamp(value[key])
                server = fqdn(key)
                if moment is not None and server:
                    timestamps.append((status_time_label(name), server, moment))
        else:
            moment = _timestamp(value)
            if moment is not None:
                # A plain DateTime of the CMS itself: about the active master.
                timestamps.append((status_time_label(name), master or "unknown", moment))
    return CmsStatus(master, agents, timestamps)


# ------------------------------------------------------------------------ File Transfer Agent events


@dataclass
class FtaEventState:
    """What the FTA event reader keeps between runs of one job."""

    cursor: int | None = None  # highest RecordId seen; None before the first read
    counts: dict[int, int] = field(default_factory=lambda: {event_id: 0 for event_id in FTA_EVENT_IDS})
    last_seen: dict[int, float] = field(default_factory=dict)

    def update(self, events: list[Mapping[str, Any]]) -> None:
        """Count events newer than the cursor; the first read only sets it (older events are history)."""
        first = self.cursor is None
        cursor = self.cursor or 0
        newest: int | None = None
        for event in events:
            event_id, record_id, created = event["Id"], event.get("RecordId"), event.get("TimeCreated")
            if event_id not in self.counts:
                continue
            if isinstance(created, dt.datetime):
                self.last_seen[event_id] = max(self.last_seen.get(event_id, 0.0), created.timestamp())
            if record_id is None:
                continue
            newest = record_id if newest is None else max(newest, record_id)
            if not first and record_id > cursor:
                self.counts[event_id] += 1
        if first:
            self.cursor = newest or 0
        elif newest is not None and newest != cursor:
            # Newer events move the cursor; a newest id below it means the log was cleared: restart there.
            self.cursor = newest


# ---------------------------------------------------------------------------------------- collector


Context = CollectContext[CmsReplicationSettings, FtaEventState]


class CmsReplicationCollector(Collector[CmsReplicationSettings, FtaEventState]):
    name = "cms_replication"
    roles = frozenset({"lync_frontend"})
    settings_model = CmsReplicationSettings
    state_model = FtaEventState
    metrics = (
        UP_TO_DATE,
        LAST_STATUS_REPORT,
        LAST_UPDATE_CREATION,
        REPLICA_INFO,
        ACTIVE_MASTER_INFO,
        ACTIVE_AGENTS,
        STATUS_TIMESTAMP,
        FTA_EVENTS,
        FTA_LAST_SEEN,
    )
    cmdlets = ((LYNC, CMDLET), (WINDOWS, EVENT_CMDLET))
    posts_facts = {"lync_frontend": (LYNC_SERVER_VERSIONS,)}
    cmdlet_parameters = {
        CMDLET: {"CentralManagementStoreStatus": None},
        EVENT_CMDLET: {"FilterHashtable": None, "MaxEvents": None},
    }

    def collect(self, ctx: Context) -> list[Sample]:
        settings = ctx.settings
        # Three independent reads (two on the Lync endpoint, one on the Windows one), made at once.
        reads: list[Callable[[], list[Sample]]] = [lambda: self._replicas(ctx)]
        if settings.central_management_store_status:
            reads.append(lambda: self._cms_status(ctx))
        if settings.file_transfer_agent_events:
            reads.append(lambda: self._fta_events(ctx, settings.file_transfer_agent_max_events))
        return [sample for part in run_together(*reads) for sample in part]

    def _replicas(self, ctx: Context) -> list[Sample]:
        answer = ctx.run(LYNC, CMDLET, None, REPLICA_STATE)
        samples: list[Sample] = []
        seen: set[str] = set()
        for replica in answer.objects:
            # FQDNs are case-insensitive; one series per replica however the server spells it.
            name = fqdn(replica["ReplicaFqdn"])
            if not name or name in seen:
                continue
            seen.add(name)
            samples.append(UP_TO_DATE.sample(1 if replica["UpToDate"] else 0, replica=name))
            if replica["LastStatusReport"] is not None:
                samples.append(LAST_STATUS_REPORT.sample(replica["LastStatusReport"].timestamp(), replica=name))
            if replica["LastUpdateCreation"] is not None:
                samples.append(LAST_UPDATE_CREATION.sample(replica["LastUpdateCreation"].timestamp(), replica=name))
            version = clean_text(replica.get("ProductVersion"))[:32] or "unknown"
            samples.append(REPLICA_INFO.sample(1, replica=name, product_version=version))
        # For the Exchange jobs that judge their version against Lync's (exchange_topology).
        ctx.post(LYNC_SERVER_VERSIONS, versions_fact([(fqdn(r["ReplicaFqdn"]), r.get("ProductVersion"))
                                                      for r in answer.objects]))
        return samples

    def _cms_status(self, ctx: Context) -> list[Sample]:
        answer = ctx.run(LYNC, CMDLET, {"CentralManagementStoreStatus": None}, CMS_STATUS)
        if not answer.objects:
            return []
        status = read_cms_status(answer.objects[0])
        samples: list[Sample] = []
        if status.active_master:
            samples.append(ACTIVE_MASTER_INFO.sample(1, active_master=status.active_master))
        samples += [ACTIVE_AGENTS.sample(count, kind=kind) for kind, count in sorted(status.active_agents.items())]
        seen: set[tuple[str, str]] = set()
        for prop, server, moment in status.timestamps:
            if (prop, server) not in seen:
                seen.add((prop, server))
                samples.append(STATUS_TIMESTAMP.sample(moment, property=prop, server=server))
        return samples

    def _fta_events(self, ctx: Context, max_events: int) -> list[Sample]:
        query = {"LogName": FTA_LOG, "ProviderName": FTA_PROVIDER, "Id": list(FTA_EVENT_IDS)}
        answer = ctx.run(
            WINDOWS,
            EVENT_CMDLET,
            {"FilterHashtable": query, "MaxEvents": max_events},
            FTA_EVENT,
            accept_error_ids=("NoMatchingEventsFound",),  # no event is an empty answer, not a failure
        )
        state = ctx.state
        state.update(answer.objects)
        samples = [FTA_EVENTS.sample(state.counts[event_id], event_id=str(event_id)) for event_id in FTA_EVENT_IDS]
        samples += [
            FTA_LAST_SEEN.sample(moment, event_id=str(event_id)) for event_id, moment in sorted(state.last_seen.items())
        ]
        return samples
