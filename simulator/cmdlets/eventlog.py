"""Get-WinEvent: the scenario's events as EventLogRecord objects, newest first like Windows."""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

from simulator import errors, psobjects
from simulator.cmdlets.base import (
    ANY,
    HASHTABLE,
    INT,
    STRING,
    STRINGS,
    SWITCH,
    Invocation,
    Param,
    cmdlet,
    exclusive,
)
from simulator.cmdlets.queries import QueryError, event_xpath
from simulator.wire_values import EnumFactory

_CLASS = "Microsoft.PowerShell.Commands.GetWinEventCommand"
_TYPES = [
    "System.Diagnostics.Eventing.Reader.EventLogRecord",
    "System.Diagnostics.Eventing.Reader.EventRecord",
    "System.Object",
]
_LEVEL_NAMES = {0: "Information", 1: "Critical", 2: "Error", 3: "Warning", 4: "Information", 5: "Verbose"}
_STANDARD_LOGS = ("Application", "System", "Security", "Setup")
_HASHTABLE_KEYS = {"logname", "providername", "id", "level", "starttime", "endtime", "keywords", "path", "userid",
                   "data"}


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _matches_any(value: str, patterns: list) -> bool:
    lowered = value.lower()
    return any(fnmatch.fnmatchcase(lowered, str(p).lower()) for p in patterns)


def _to_time(inv: Invocation, value: Any, key: str) -> dt.datetime:
    """Hashtable StartTime/EndTime: a DateTime, or a string PowerShell would convert (server-local)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=inv.view.tz)
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.TerminatingError(
            errors.invalid_argument(f"Cannot convert value \"{value}\" of hashtable key '{key}' to type "
                                    "\"System.DateTime\".", f"InvalidHashtableValue,{_CLASS}", "Get-WinEvent")
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=inv.view.tz)


def _hashtable_filter(inv: Invocation, table: dict):
    keys = {str(k).lower(): v for k, v in table.items()}
    unknown = set(keys) - _HASHTABLE_KEYS
    if unknown:
        raise errors.TerminatingError(
            errors.invalid_argument(
                f"The FilterHashtable key '{sorted(unknown)[0]}' is not valid. Valid keys are LogName, ProviderName, "
                "Path, Keywords, ID, Level, StartTime, EndTime, UserID and Data.",
                f"InvalidHashtableKey,{_CLASS}", "Get-WinEvent",
            )
        )
    logs = _as_list(keys["logname"]) if "logname" in keys else None
    providers = _as_list(keys["providername"]) if "providername" in keys else None
    ids = {int(i) for i in _as_list(keys["id"])} if "id" in keys else None
    levels = {int(i) for i in _as_list(keys["level"])} if "level" in keys else None
    start = _to_time(inv, keys["starttime"], "StartTime") if "starttime" in keys else None
    end = _to_time(inv, keys["endtime"], "EndTime") if "endtime" in keys else None

    def predicate(record: dict) -> bool:
        return (
            (logs is None or _matches_any(record["log"], logs))
            and (providers is None or _matches_any(record["provider"], providers))
            and (ids is None or record["id"] in ids)
            and (levels is None or record["level"] in levels)
            and (start is None or record["time"] >= start)
            and (end is None or record["time"] <= end)
        )

    return predicate


def _record(inv: Invocation, record_id: int, when: dt.datetime, event) -> Any:
    view = inv.view
    return psobjects.ps_object(
        _TYPES,
        adapted={
            "Id": event.id,
            "Version": psobjects.byte(0),
            "Qualifiers": None,
            "Level": psobjects.byte(event.level),
            "Task": event.task,
            "Opcode": None,
            "Keywords": psobjects.int64(event.keywords),
            "RecordId": psobjects.int64(record_id),
            "ProviderName": event.provider,
            "ProviderId": None,
            "LogName": event.log,
            "ProcessId": event.process_id,
            "ThreadId": 0,
            "MachineName": view.name,
            "UserId": None,
            "TimeCreated": view.local_dt(when),
            "ActivityId": None,
            "RelatedActivityId": None,
            "ContainerLog": event.log,
            "LevelDisplayName": _LEVEL_NAMES.get(event.level, "Information"),
            "OpcodeDisplayName": "Info",
            "TaskDisplayName": None,
            "KeywordsDisplayNames": psobjects.string_list(["Classic"]),
        },
        # Get-WinEvent renders the message once and adds it as a note property.
        extended={"Message": event.message},
        to_string="System.Diagnostics.Eventing.Reader.EventLogRecord",
    )


@cmdlet(
    "Get-WinEvent",
    _CLASS,
    "windows",
    params=(
        Param("LogName", STRINGS, position=0),
        Param("ProviderName", STRINGS),
        Param("FilterHashtable", HASHTABLE),
        Param("FilterXPath", STRING),
        Param("MaxEvents", INT),
        Param("Oldest", SWITCH),
        Param("Force", SWITCH),
        Param("ComputerName", STRING, aliases=("Cn",)),
        Param("Credential", ANY),
        Param("ListLog", STRINGS),
    ),
)
def get_win_event(inv: Invocation) -> None:
    exclusive(inv, ("FilterHashtable",), ("LogName", "ProviderName", "FilterXPath"), ("ListLog",))
    view = inv.view
    if inv.has("ListLog"):
        _list_logs(inv)
        return
    records = [
        {"record_id": rid, "time": when, "log": e.log, "provider": e.provider, "id": e.id, "level": e.level,
         "task": e.task, "event": e}
        for rid, when, e in view.events()
    ]
    known_logs = {r["log"].lower() for r in records} | {n.lower() for n in _STANDARD_LOGS}

    predicates = []
    if inv.has("FilterHashtable"):
        tables = inv.get("FilterHashtable")
        tables = tables if isinstance(tables, list) else [tables]
        table_preds = [_hashtable_filter(inv, t) for t in tables]
        predicates.append(lambda r: any(p(r) for p in table_preds))
    if inv.has("LogName"):
        names = inv.get("LogName")
        missing = [n for n in names if not any(fnmatch.fnmatchcase(log, n.lower()) for log in known_logs)]
        for name in missing:
            inv.out.error(errors.no_matching_logs(name))
        if len(missing) == len(names):  # no log to read: Windows reports only the missing logs
            return
        predicates.append(lambda r: _matches_any(r["log"], names))
    if inv.has("ProviderName"):
        providers = inv.get("ProviderName")
        predicates.append(lambda r: _matches_any(r["provider"], providers))
    if inv.has("FilterXPath"):
        try:
            predicates.append(event_xpath(inv.get("FilterXPath"), view.now))
        except QueryError as err:
            raise errors.TerminatingError(errors.invalid_query(str(err))) from None

    matched = [r for r in records if all(p(r) for p in predicates)]
    matched.sort(key=lambda r: r["record_id"], reverse=not inv.get("Oldest", False))
    max_events = inv.get("MaxEvents")
    if max_events is not None:
        if max_events < 1:
            raise inv.cmdlet.binding_error(
                "ParameterArgumentValidationError",
                f"Cannot validate argument on parameter 'MaxEvents'. The {max_events} argument is less than the "
                "minimum allowed range of 1. Supply an argument that is greater than or equal to 1 and then try the "
                "command again.",
                "MaxEvents",
            )
        matched = matched[:max_events]
    if not matched:
        inv.out.error(errors.no_matching_events())
        return
    for r in matched:
        inv.out.write(_record(inv, r["record_id"], r["time"], r["event"]))


# ------------------------------------------------------------ Get-WinEvent -ListLog

_LOG_ISOLATION = {"application": ("Application", 0), "system": ("System", 1)}
# Windows' default DACL of the Application log (wevtutil gl Application: channelAccess).
_APPLICATION_SDDL = ("O:BAG:SYD:(A;;0x2;;;S-1-15-2-1)(A;;0xf0007;;;SY)(A;;0x7;;;BA)(A;;0x7;;;SO)(A;;0x3;;;IU)"
                     "(A;;0x3;;;SU)(A;;0x3;;;S-1-5-3)(A;;0x3;;;S-1-5-33)(A;;0x1;;;S-1-5-32-573)")


def _list_logs(inv: Invocation) -> None:
    """EventLogConfiguration objects in the shape of the captures
    (../shared/captures/exchange/E15, E16/GetWinEventApplication.xml: Get-WinEvent -ListLog
    Application): the log's configuration as properties, its file's state as notes."""
    view = inv.view
    records = view.events()
    logs = sorted({e.log for _, _, e in records} | set(_STANDARD_LOGS), key=str.lower)
    for pattern in inv.get("ListLog"):
        matched = [log for log in logs if fnmatch.fnmatchcase(log.lower(), pattern.lower())]
        if not matched:
            inv.out.error(errors.no_matching_logs(pattern))
        for log in matched:
            inv.out.write(_log_configuration(inv, log, [(rid, when, e) for rid, when, e in records if e.log == log]))


def _log_configuration(inv: Invocation, log: str, records: list) -> Any:
    enums = EnumFactory()
    isolation = _LOG_ISOLATION.get(log.lower(), ("Custom", 2) if log not in _STANDARD_LOGS else ("Application", 0))
    providers = psobjects.PSList(sorted({e.provider for _, _, e in records} | ({"Application", "Application Error"}
                                                                              if log == "Application" else set())))
    providers.PSObject.type_names = ["System.String[]", "System.Array", "System.Object"]
    newest = max((when for _, when, _ in records), default=inv.view.started_at)
    return psobjects.ps_object(
        ["System.Diagnostics.Eventing.Reader.EventLogConfiguration", "System.Object"],
        adapted={
            "LogName": log,
            "LogType": enums("System.Diagnostics.Eventing.Reader.EventLogType", "Administrative", 0),
            "LogIsolation": enums("System.Diagnostics.Eventing.Reader.EventLogIsolation", *isolation),
            "IsEnabled": True,
            "IsClassicLog": True,
            "SecurityDescriptor": _APPLICATION_SDDL,
            "LogFilePath": f"%SystemRoot%\\System32\\Winevt\\Logs\\{log.replace('/', '%4')}.evtx",
            "MaximumSizeInBytes": psobjects.int64(20 * 1024 * 1024),
            "LogMode": enums("System.Diagnostics.Eventing.Reader.EventLogMode", "Circular", 0),
            "OwningProviderName": "",
            "ProviderNames": providers,
            "ProviderLevel": None,
            "ProviderKeywords": None,
            "ProviderBufferSize": 64,
            "ProviderMinimumNumberOfBuffers": 0,
            "ProviderMaximumNumberOfBuffers": 64,
            "ProviderLatency": 1000,
            "ProviderControlGuid": None,
        },
        # Get-WinEvent -ListLog adds the log file's state as notes (as in the captures).
        extended={
            "FileSize": psobjects.int64(69632 + 4096 * len(records)),
            "IsLogFull": False,
            "LastAccessTime": inv.view.local_dt(newest),
            "LastWriteTime": inv.view.local_dt(newest),
            "OldestRecordNumber": psobjects.int64(min((rid for rid, _, _ in records), default=0)),
            "RecordCount": psobjects.int64(len(records)),
        },
        to_string="System.Diagnostics.Eventing.Reader.EventLogConfiguration",
    )
