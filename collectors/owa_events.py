"""Check E1: Event 112 (IM endpoint manager initialised) and IM initialisation failures of OWA.

Exchange writes Event 112 (provider ``MSExchange OWA``, Application log) after the first OWA
sign-in that follows a start of MSExchangeOWAAppPool. A pool that started long ago with no 112
since means IM in OWA is broken on that server; failure events of the same provider tell why
(reasons in ``owa_im_failures``). The time of the last 112 is exported as the event's own
TimeCreated (UTC), for a rule to compare with the OWA worker's start time.

Two sources, chosen by ``source``: ``remote`` (the default) asks the server with Get-WinEvent,
filtered on the server and incremental by RecordId (``owa_events_remote``); ``files`` reads a
folder of exported .evtx files, watched with watchdog (``owa_events_files``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictInt, ValidationInfo, field_validator, model_validator

from collectors import owa_events_remote
from collectors.cmdlet_policy import OneOf
from collectors.base import CollectContext, Collector, Sample
from collectors.evtx_watch import FolderWatch
from collectors.owa_events_files import SAFETY_SECONDS, ComputerFilter, FolderReader, FolderState
from collectors.owa_events_remote import RemoteCursor
from collectors.owa_events_tally import METRICS, Tally
from exporter.config import CollectorSettings, Duration

MIN_LOOKBACK_SECONDS = 600.0  # twice the clock-skew margin the remote reader allows for


class OwaEventsSettings(CollectorSettings):
    # remote: Get-WinEvent over the target's Windows endpoint. files: a folder of exported .evtx files.
    source: Literal["remote", "files"] = "remote"
    # How far back the first run looks for events (remote; in files mode, older events are never counted).
    lookback: Duration = Field(default="24h", validate_default=True)  # type: ignore[assignment]
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
        base = info.context.get("base_dir") if isinstance(info.context, dict) else None
        resolved = Path(path)
        return str(resolved if resolved.is_absolute() or base is None else Path(base) / resolved)

    @model_validator(mode="after")
    def _files_settings_need_files(self) -> "OwaEventsSettings":
        if self.source == "files" and self.path is None:
            raise ValueError("source files needs path: the folder holding the exported .evtx files")
        if self.source == "remote" and {"path", "observer", "computer"} & self.model_fields_set:
            raise ValueError("path, observer and computer apply to source files only")
        return self


class OwaEventsCollector(Collector):
    name = "owa_events"
    roles = frozenset({"exchange_mailbox"})
    settings_model = OwaEventsSettings
    metrics = METRICS
    cmdlets = (("windows", owa_events_remote.CMDLET),)
    cmdlet_parameters = {
        owa_events_remote.CMDLET: {"LogName": OneOf((owa_events_remote.LOG_NAME,)), "FilterXPath": None,
                                   "MaxEvents": None, "Oldest": None},
    }

    def collect(self, ctx: CollectContext) -> list[Sample]:
        settings = ctx.settings
        assert isinstance(settings, OwaEventsSettings)
        tally: Tally = ctx.memory.setdefault("tally", Tally())
        if settings.source == "remote":
            cursor: RemoteCursor = ctx.memory.setdefault("remote", RemoteCursor())
            owa_events_remote.read(ctx, cursor, tally, settings.lookback, settings.max_events)
        else:
            assert settings.path is not None
            state: FolderState = ctx.memory.setdefault("files", FolderState())
            reader = FolderReader(settings.path, settings.observer == "polling", settings.lookback, ctx.log,
                                  ComputerFilter(settings.computer or ctx.target.host))
            budget = max(ctx.deadline.remaining() - SAFETY_SECONDS, 0.5)
            # Kept in memory before reading, so close() stops it even when this run fails.
            watch = ctx.memory["watch"] = reader.ensure_watch(ctx.memory.get("watch"))
            reader.read(state, tally, watch, budget)
        return tally.samples()

    def close(self, memory: dict[str, Any]) -> None:
        watch = memory.pop("watch", None)
        if isinstance(watch, FolderWatch):
            watch.stop()
