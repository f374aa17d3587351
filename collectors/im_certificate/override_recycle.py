"""Check E3 on Exchange 2016/2019: OWA's worker started after the IM setting override last changed.

Microsoft's "Configure instant messaging integration with Outlook on the web in Exchange" gives three
steps, for a new override and for a changed one alike: New-/Set-SettingOverride, then on every OWA server
``Get-ExchangeDiagnosticInfo ... -Component VariantConfiguration -Argument Refresh``, then
``Restart-WebAppPool MSExchangeOWAAppPool``. After a refresh without the restart, VariantConfiguration
already shows the new values (check ``im_setting_override_in_effect`` passes) while the running OWA
worker keeps those it read when it started.

The observable: the override's ``WhenChangedUTC`` (``WhenChanged`` as a fallback; both are on real
Get-SettingOverride objects, ../shared/captures/exchange/E19/GetSettingOverride.xml) against the start of
the newest w3wp.exe serving MSExchangeOWAAppPool (Win32_Process ``CreationDate``). A worker that started
before the change did not read the changed values. AD's whenChanged "is not replicated" (Microsoft's
When-Changed attribute page): each domain controller keeps its own, on its own clock, so the time read is
the one of the DC the Exchange endpoint asked. The DC's clock and the server's differ by little in a
working domain (Kerberos, which Exchange needs, recommends at most five minutes of skew: MS-KILE, after
RFC 4120), so a worker counts as recycled when it started at most CLOCK_TOLERANCE before the change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping

from collectors.contract import CollectContext
from collectors.im_certificate.im_settings import (
    SOURCE_SETTING_OVERRIDE,
    ImSettings,
    override_parameters,
    override_scope,
)
from collectors.im_certificate.owa_web_config import KEY_SERVER_NAME, KEY_THUMBPRINT
from collectors.sources.app_pool_workers import read_pool_workers

CHECK_RECYCLED = "owa_app_pool_recycled_after_im_override"
# The pool Microsoft's article restarts; the IM settings are OWA's.
OWA_POOL = "MSExchangeOWAAppPool"
# Kerberos' default clock skew: a domain whose clocks differ by more breaks Exchange before it breaks this.
CLOCK_TOLERANCE = dt.timedelta(minutes=5)


def change_time(override: Mapping[str, Any]) -> dt.datetime | None:
    """When an override last changed (aware), from WhenChangedUTC, else WhenChanged; None if neither."""
    for name in ("WhenChangedUTC", "WhenChanged"):
        value = override.get(name)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    return None


def last_change_in_use(
    overrides: Iterable[Mapping[str, Any]], server: str, version: tuple[int, ...] | None
) -> dt.datetime | None:
    """The newest change among the IM overrides whose values ``server`` uses: for each key, those of the
    server scope that set it, else those of the organisation scope (the order im_settings_from_overrides
    resolves them in). None when none applies or none carries a change time."""
    by_scope: dict[str, list[Mapping[str, Any]]] = {"server": [], "organization": []}
    for override in overrides:
        scope = override_scope(override, server, version)
        if scope is not None:
            by_scope[scope].append(override)
    used: list[Mapping[str, Any]] = []
    for key in (KEY_SERVER_NAME.casefold(), KEY_THUMBPRINT.casefold()):
        for scope in ("server", "organization"):
            setters = [o for o in by_scope[scope] if key in override_parameters(o)]
            if setters:
                used += setters
                break
    return max((t for t in map(change_time, used) if t is not None), default=None)


def recycled_after(changed_at: dt.datetime, worker_started: dt.datetime,
                   tolerance: dt.timedelta = CLOCK_TOLERANCE) -> bool:
    """The worker started after the change, or at most ``tolerance`` before it (two servers' clocks)."""
    return worker_started >= changed_at - tolerance


def judge_recycled(ctx: CollectContext, im: ImSettings, changed_at: dt.datetime | None) -> bool | None:
    """Whether OWA's worker started after the override in use last changed; None when not judged: no
    override sets both values (the other E3 checks say so), no change time, or no worker runs (IIS
    starts one at the next request, and it reads the current values)."""
    if im.source != SOURCE_SETTING_OVERRIDE or im.problem is not None:
        return None
    if not (im.server_name and im.certificate_thumbprint) or changed_at is None:
        return None
    started = read_pool_workers(ctx, OWA_POOL).newest_start
    if started is None:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=dt.timezone.utc)
    return recycled_after(changed_at, started)
