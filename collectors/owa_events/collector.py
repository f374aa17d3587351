"""Check E1: Event 112 (IM endpoint manager initialised) and IM initialisation failures of OWA.

Exchange writes Event 112 (provider ``MSExchange OWA``, Application log) after the first OWA
sign-in that follows a start of MSExchangeOWAAppPool. A pool that started long ago with no 112
since means IM in OWA is broken on that server; failure events of the same provider tell why
(reasons in ``reasons``). The time of the last 112 is exported as the event's own
TimeCreated (UTC), for a rule to compare with the OWA worker's start time.

Two sources, chosen by ``source``: ``remote`` (the default) asks the server with Get-WinEvent,
filtered on the server and incremental by RecordId (``remote``); ``files`` reads a folder of
exported .evtx files, watched with watchdog (``files``). Counting is in ``tally``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, StrictInt, ValidationInfo, field_validator, model_validator

from collectors.contract import (
    CollectContext,
    Collector,
    CollectorSettings,
    Duration,
    Sample,
)
from collectors.helpers.cmdlet_policy import OneOf
from collectors.helpers.paths import resolve_path
from collectors.owa_events import remote as owa_events_remote
from collectors.owa_events.files import (
    SAFETY_SECONDS,
    ComputerFilter,
    FolderReader,
    FolderState,
)
from collectors.owa_events.remote import RemoteCursor
from collectors.owa_events.tally import METRICS, Tally
from collectors.sources.folder_watch import FolderWatch

MIN_LOOKBACK_SECONDS = 600.0  # twice the clock-skew margin the remote reader allows for


class OwaEventsSettings(CollectorSettings):
    # remote: Get-WinEvent over the target's Windows endpoint. files: a folder of exported .evtx files.
    source: Literal["remote", "files"] = "remote"
    # How far back the first run looks for events (remote; in files mode, older events are never counted).
    lookback: Duration = Field(default_factory=lambda: "24h", validate_default=True)
    # The most events one Get-WinEvent call returns (remote).
    max_events: StrictInt = Field(default=500, ge=1, le=10_000)
    # files: the folder holding the exported .evtx files (relative paths: to the configuration file).
    path: str | None = Field(default=None, min_length=1)
    # files: native (inotify / ReadDirectoryChangesW) or polling (needed for network shares).
    observer: Literal["native", "polling"] = "native"
    # files: whose events count, by the records' Computer: a host name (FQDN or short name), "*" for
    # any; default the target's host, so a share holding every server's exports counts each its own.
    computer: str | None = Field(default=None, min_length=1, max_length=255)

    @field_validator("lookback")
    @classmethod
    def _lookback_long_enough(cls, lookback: float) -> float:
        if lookback < MIN_LOOKBACK_SECONDS:
            raise ValueError("lookback must be at least 10m")
        return lookback

    @field_validator("path")
    @classmethod
    def _relative_to_config(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is None:
            return None
        return str(resolve_path(path, info))

    @model_validator(mode="after")
    def _files_settings_need_files(self) -> "OwaEventsSettings":
        if self.source == "files" and self.path is None:
            raise ValueError("source files needs path: the folder holding the exported .evtx files")
        if self.source == "remote" and {"path", "observer", "computer"} & self.model_fields_set:
            raise ValueError("path, observer and computer apply to source files only")
        return self


@dataclass
class OwaEventsState:
    tally: Tally = field(default_factory=Tally)  # counters that never decrease
    remote: RemoteCursor = field(default_factory=RemoteCursor)  # source: remote
    files: FolderState = field(default_factory=FolderState)  # source: files
    watch: FolderWatch | None = None  # source: files; started by the first run, stopped by close()


Context = CollectContext[OwaEventsSettings, OwaEventsState]


class OwaEventsCollector(Collector[OwaEventsSettings, OwaEventsState]):
    name = "owa_events"
    roles = frozenset({"exchange_mailbox"})
    settings_model = OwaEventsSettings
    state_model = OwaEventsState
    metrics = METRICS
    cmdlets = (("windows", owa_events_remote.CMDLET),)
    cmdlet_parameters = {
        owa_events_remote.CMDLET: {"LogName": OneOf((owa_events_remote.LOG_NAME,)), "FilterXPath": None,
                                   "MaxEvents": None, "Oldest": None},
    }

    def collect(self, ctx: Context) -> list[Sample]:
        settings, state = ctx.settings, ctx.state
        if settings.path is None:  # source: remote (the settings model requires a path for files)
            owa_events_remote.read(ctx, state.remote, state.tally, settings.lookback, settings.max_events)
        else:
            reader = FolderReader(settings.path, settings.observer, settings.lookback, ctx.log,
                                  ComputerFilter(settings.computer or ctx.target.host))
            budget = max(ctx.deadline.remaining() - SAFETY_SECONDS, 0.5)
            # Kept in the state before reading, so close() stops it even when this run fails.
            watch = state.watch = reader.ensure_watch(state.watch)
            reader.read(state.files, state.tally, watch, budget)
        return state.tally.samples(reads_evtx=settings.path is not None)

    def close(self, state: OwaEventsState) -> None:
        watch, state.watch = state.watch, None
        if watch is not None:
            watch.stop()
