"""Check E4: the UCMA 4.0 runtime that OWA loads for instant messaging.

OWA finds its IM provider through the registry value ``ImplementationDLLPath`` of
``HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchange OWA\\InstantMessaging``, which points at the
folder holding ``Microsoft.Rtc.Internal.Ucweb.dll`` (installed by UcmaRuntimeSetup.exe). A value
that is missing, or a DLL that is not where it points, means "IM provider not found" in OWA.
"""

from __future__ import annotations

import re
from typing import Any

from collectors.config_checks import CONFIG_CHECK_OK, check_sample
from collectors.contract import (
    CollectContext,
    Collector,
    CollectorSettings,
    Field,
    NoState,
    Sample,
    Shape,
)
from collectors.helpers.cmdlet_policy import Matching, OneOf

REGISTRY_CMDLET = "Get-ItemProperty"
ITEM_CMDLET = "Get-Item"
IM_KEY = r"HKLM:\SYSTEM\CurrentControlSet\Services\MSExchange OWA\InstantMessaging"
VALUE_NAME = "ImplementationDLLPath"
DLL_NAME = "Microsoft.Rtc.Internal.Ucweb.dll"
# A missing key, file or drive is an answer ("not there"), not a failure.
_NOT_FOUND_IDS = ("PathNotFound", "DriveNotFound", "ItemNotFound")
# Only an absolute path on a local drive is looked at: the value comes from the server and must
# not steer the check to a share (\\host\...), another provider (HKLM:, Cert:) or odd characters.
_LOCAL_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PATH_CHARS = 1024

REGISTRY_KEY = Shape(REGISTRY_CMDLET)
ITEM = Shape(ITEM_CMDLET, (Field("PSIsContainer", "bool", required=False, nullable=True),))


def implementation_dll_path(key_objects: list[dict[str, Any]]) -> Any:
    """The ImplementationDLLPath value among Get-ItemProperty's output, or None when absent or blank.

    Registry value names are case-insensitive; PowerShell adds PS* properties beside the values.
    """
    for obj in key_objects:
        for name, value in obj.items():
            if name.lower() != VALUE_NAME.lower() or value is None:
                continue
            if isinstance(value, str) and not value.strip():
                return None
            return value
    return None


def dll_path_for(value: Any) -> str | None:
    """Where the DLL must be, Windows-style, for an ImplementationDLLPath value; None when unusable.

    The value names the folder (``C:\\...\\SSP\\``); a value naming the DLL itself is accepted too.
    The result is only ever passed as a literal path, never as a pattern or code.
    """
    if not isinstance(value, str):
        return None
    folder = value.strip()
    if len(folder) > MAX_PATH_CHARS or _CONTROL.search(folder) or not _LOCAL_ABSOLUTE.match(folder):
        return None
    folder = folder.rstrip("\\/")
    if folder.replace("/", "\\").lower().endswith("\\" + DLL_NAME.lower()):
        return folder
    return f"{folder}\\{DLL_NAME}"


Context = CollectContext[CollectorSettings, NoState]


class UcmaRuntimeCollector(Collector[CollectorSettings, NoState]):
    name = "ucma_runtime"
    roles = frozenset({"exchange_mailbox"})
    metrics = (CONFIG_CHECK_OK,)
    cmdlets = (("windows", REGISTRY_CMDLET), ("windows", ITEM_CMDLET))
    cmdlet_parameters = {
        REGISTRY_CMDLET: {"Path": OneOf((IM_KEY,))},
        ITEM_CMDLET: {"LiteralPath": Matching(r".*\\Microsoft\.Rtc\.Internal\.Ucweb\.dll")},
    }

    def collect(self, ctx: Context) -> list[Sample]:
        key = ctx.run("windows", REGISTRY_CMDLET, {"Path": IM_KEY}, REGISTRY_KEY, accept_error_ids=_NOT_FOUND_IDS)
        value = implementation_dll_path(key.objects)
        dll_present = False
        if value is not None:
            dll_path = dll_path_for(value)
            if dll_path is None:
                ctx.log.warning("%s is not an absolute local folder (%.80r); %s not looked for", VALUE_NAME, value,
                                DLL_NAME)
            else:
                dll_present = self._is_file(ctx, dll_path)
        return [
            check_sample("ucma_registry_value_present", value is not None),
            check_sample("ucma_dll_present", dll_present),
        ]

    def _is_file(self, ctx: Context, path: str) -> bool:
        # -LiteralPath: brackets, '*' or '?' in the folder name are characters, not wildcards.
        answer = ctx.run("windows", ITEM_CMDLET, {"LiteralPath": path}, ITEM, accept_error_ids=_NOT_FOUND_IDS)
        return any(obj.get("PSIsContainer") is not True for obj in answer.objects)
