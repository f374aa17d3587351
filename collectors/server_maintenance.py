"""Maintenance awareness: is this Exchange server or Lync front end deliberately out of service?

A server an administrator has taken out of service for an update is not an outage: its pages are
muted in Alertmanager while ``lync_owa_server_in_maintenance`` is 1 (docs/checks.md, "Maintenance").

- Exchange: ``Get-ServerComponentState -Identity <server>`` lists every component with its State
  (Active, Inactive, Draining). The documented maintenance mode sets ServerWideOffline Inactive
  (Set-ServerComponentState, example 2); the procedure drains HubTransport first; OwaProxy Inactive
  means the server's OWA takes no users. Only the configured components count: a healthy server has
  datacenter-only components (ForwardSyncDaemon, ProvisioningRps) Inactive all the time.
- Lync / Skype for Business front end: ``Get-CsWindowsService -Name RTCSRV -ExcludeActivityLevel``
  gives the Front-End service's Status. ``Stop-CsWindowsService -Graceful`` drains it (no new
  requests) and ``Invoke-CsComputerFailOver`` drains, stops and disables the services. The cmdlet is
  run on the front end itself (Windows endpoint): Microsoft documents it for local use.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field as SettingField

from collectors.contract import (
    CollectContext,
    Collector,
    CollectorSettings,
    Field,
    MetricSpec,
    NoState,
    Sample,
    Shape,
)
from collectors.helpers.cmdlet_policy import Matching
from collectors.helpers.endpoints import EXCHANGE, WINDOWS
from collectors.helpers.text import clean_text

COMPONENT_CMDLET = "Get-ServerComponentState"
SERVICE_CMDLET = "Get-CsWindowsService"
EXCHANGE_ROLES = frozenset({"exchange_mailbox", "exchange_client_access"})
FRONTEND_ROLE = "lync_frontend"
KIND_EXCHANGE = "exchange_component"
KIND_LYNC = "lync_service"
# Service names are short Windows service names (RTCSRV, REPLICA...): never a pattern or a path.
SERVICE_NAME = r"[A-Za-z0-9_]{1,64}"

ComponentStateName = Literal["Inactive", "Draining"]
ServiceStatus = Literal["Stopped", "StopPending", "Paused", "PausePending"]
# Names from the configuration become label values and a cmdlet argument: keep them plain.
ComponentName = Annotated[str, SettingField(pattern=r"^[A-Za-z0-9]{1,64}$")]
ServiceName = Annotated[str, SettingField(pattern=f"^{SERVICE_NAME}$")]

COMPONENT_STATE = Shape(
    COMPONENT_CMDLET,
    (
        Field("Component", "str"),
        Field("State", "str"),
        Field("ServerFqdn", "str", required=False, nullable=True),
    ),
)
LYNC_SERVICE = Shape(
    SERVICE_CMDLET,
    (
        Field("Name", "str"),
        Field("Status", "str"),
    ),
)

IN_MAINTENANCE = MetricSpec(
    "lync_owa_server_in_maintenance",
    "gauge",
    "1 when the server is taken out of service for maintenance (an Exchange component state or a drained or "
    "stopped Lync Front-End service, as configured); its pages are muted in Alertmanager.",
)
MAINTENANCE_STATE = MetricSpec(
    "lync_owa_server_maintenance_state",
    "gauge",
    "The state of each Exchange component or Lync service the maintenance check reads (missing when the server "
    "does not list it): 1 when that state puts the server in maintenance, else 0.",
    ("kind", "component", "state"),
)
MISSING = "missing"
OTHER = "other"  # a value outside the enum: label values stay a closed set
EXCHANGE_STATES = ("Active", "Inactive", "Draining")  # Microsoft.Exchange.Data.ServiceState
SERVICE_STATUSES = ("Stopped", "StartPending", "StopPending", "Running", "ContinuePending", "PausePending", "Paused")


def _known(value: str, known: tuple[str, ...]) -> str:
    """The enum name as .NET spells it, ``missing`` when absent, ``other`` when not one of them."""
    if not value:
        return MISSING
    return next((name for name in known if name.casefold() == value.casefold()), OTHER)


def _default_components() -> dict[str, list[ComponentStateName]]:
    return {"ServerWideOffline": ["Inactive"], "OwaProxy": ["Inactive"], "HubTransport": ["Draining"]}


class ServerMaintenanceSettings(CollectorSettings):
    # The name Exchange knows this server by (-Identity); default: the target's host.
    exchange_server: str | None = SettingField(default=None, min_length=1, max_length=253,
                                               pattern=r"^[A-Za-z0-9_.-]+$")
    # Exchange component -> the states of it that mean "in maintenance" (names as Get-ServerComponentState
    # spells them; compared without regard to case).
    exchange_components: dict[ComponentName, list[ComponentStateName]] = SettingField(
        default_factory=_default_components, max_length=64)
    # Lync services read on a front end, and the statuses that mean drained or stopped.
    lync_services: list[ServiceName] = SettingField(default_factory=lambda: ["RTCSRV"], min_length=1, max_length=8)
    lync_statuses: list[ServiceStatus] = SettingField(
        default_factory=lambda: ["Stopped", "StopPending", "Paused", "PausePending"], min_length=1)


def component_states(objects: list[dict], wanted: dict[str, list[str]]) -> list[tuple[str, str, bool]]:
    """(component as the settings spell it, its state, whether that state means maintenance) for each
    configured component, sorted; a component the server does not list is ``missing``."""
    states = {clean_text(obj["Component"]).casefold(): clean_text(obj["State"]) for obj in objects}
    result = []
    for name, maintenance_states in sorted(wanted.items()):
        state = _known(states.get(name.casefold(), ""), EXCHANGE_STATES)
        result.append((name, state, state.casefold() in {s.casefold() for s in maintenance_states}))
    return result


def service_states(objects: list[dict], services: list[str], statuses: list[str]) -> list[tuple[str, str, bool]]:
    """(service, its status, whether that status means drained or stopped) for each wanted service, sorted."""
    found = {clean_text(obj["Name"]).casefold(): clean_text(obj["Status"]) for obj in objects}
    bad = {status.casefold() for status in statuses}
    result = []
    for name in sorted(set(services)):
        status = _known(found.get(name.casefold(), ""), SERVICE_STATUSES)
        result.append((name, status, status.casefold() in bad))
    return result


Context = CollectContext[ServerMaintenanceSettings, NoState]


class ServerMaintenanceCollector(Collector[ServerMaintenanceSettings, NoState]):
    name = "server_maintenance"
    roles = EXCHANGE_ROLES | {FRONTEND_ROLE}
    settings_model = ServerMaintenanceSettings
    metrics = (IN_MAINTENANCE, MAINTENANCE_STATE)
    cmdlets = ((EXCHANGE, COMPONENT_CMDLET), (WINDOWS, SERVICE_CMDLET))
    cmdlet_parameters = {
        COMPONENT_CMDLET: {"Identity": None},
        SERVICE_CMDLET: {"Name": Matching(SERVICE_NAME), "ExcludeActivityLevel": None},
    }

    def collect(self, ctx: Context) -> list[Sample]:
        read: list[tuple[str, str, str, bool]] = []
        roles = ctx.target.roles
        if roles & EXCHANGE_ROLES:
            read += [(KIND_EXCHANGE, *state) for state in self._exchange(ctx)]
        if FRONTEND_ROLE in roles:
            read += [(KIND_LYNC, *state) for state in self._front_end(ctx)]
        samples = [IN_MAINTENANCE.sample(1 if any(m for *_, m in read) else 0)]
        samples += [MAINTENANCE_STATE.sample(1 if m else 0, kind=k, component=c, state=s) for k, c, s, m in read]
        return samples

    def _exchange(self, ctx: Context) -> list[tuple[str, str, bool]]:
        server = ctx.settings.exchange_server or ctx.target.host
        answer = ctx.run(EXCHANGE, COMPONENT_CMDLET, {"Identity": server}, COMPONENT_STATE)
        if not answer.objects:
            ctx.log.warning("Get-ServerComponentState -Identity %s answered no component", server)
        return component_states(answer.objects, ctx.settings.exchange_components)

    def _front_end(self, ctx: Context) -> list[tuple[str, str, bool]]:
        objects: list[dict] = []
        for service in ctx.settings.lync_services:
            # -ExcludeActivityLevel: the status only, without the per-service activity counters.
            answer = ctx.run(WINDOWS, SERVICE_CMDLET, {"Name": service, "ExcludeActivityLevel": None}, LYNC_SERVICE)
            objects += answer.objects
        return service_states(objects, ctx.settings.lync_services, ctx.settings.lync_statuses)
