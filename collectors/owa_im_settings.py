"""Check E6: IM switched on, with type OCS, on OWA's client-access virtual directories and mailbox policies.

``Get-OwaVirtualDirectory -Server <host> -ShowMailboxVirtualDirectories`` lists the server's OWA
virtual directories, the client-access (front-end) ones and the back-end ones ("Exchange Back End").
IM must be on where clients arrive, the front end; a new virtual directory has InstantMessagingType
None, which silently turns IM off. On the back end 001 recommends against it ("it is recommended that
you do not enable instant messaging on your backend servers"): a back-end directory with IM enabled
and type OCS is reported as a misconfiguration, not as broken IM. ``Get-OwaMailboxPolicy`` lists the
organisation's policies: the default one decides for every mailbox without a policy of its own; every
policy is exported too, so a dashboard shows which ones keep IM off, and a non-default policy with IM off
is reported with the mailboxes assigned it (bounded counting: :mod:`collectors.helpers.owa_policy_mailboxes`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field as SettingField

from collectors.config_checks import CONFIG_CHECK_OK, check_sample
from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    Duration,
    Field,
    MetricSpec,
    Sample,
    Shape,
    label_value,
)
from collectors.helpers.owa_policy_mailboxes import CMDLET as CAS_MAILBOX_CMDLET
from collectors.helpers.owa_policy_mailboxes import (
    MailboxCounts,
    count_of,
    is_safe_dn,
    policy_filter,
)
from collectors.helpers.text import clean_text

IM_TYPE_OCS = "ocs"
BACK_END_SITE = "exchange back end"

VIRTUAL_DIRECTORY = Shape(
    "Get-OwaVirtualDirectory",
    (
        Field("Identity", "str", required=False, nullable=True),
        Field("Name", "str", required=False, nullable=True),
        Field("WebSite", "str", required=False, nullable=True),
        Field("InstantMessagingEnabled", "bool", nullable=True),
        Field("InstantMessagingType", "str", nullable=True),
    ),
)
MAILBOX_POLICY = Shape(
    "Get-OwaMailboxPolicy",
    (
        Field("Name", "str", required=False, nullable=True),
        Field("Identity", "str", required=False, nullable=True),
        Field("DistinguishedName", "str", required=False, nullable=True),
        Field("IsDefault", "bool", required=False, nullable=True),
        Field("InstantMessagingEnabled", "bool", nullable=True),
        Field("InstantMessagingType", "str", nullable=True),
    ),
)

POLICY_IM_ENABLED = MetricSpec(
    "lync_owa_mailbox_policy_im_enabled",
    "gauge",
    "1 when the OWA mailbox policy has InstantMessagingEnabled True.",
    ("policy",),
)
POLICY_IM_TYPE_OCS = MetricSpec(
    "lync_owa_mailbox_policy_im_type_ocs",
    "gauge",
    "1 when the OWA mailbox policy has InstantMessagingType OCS.",
    ("policy",),
)
POLICY_MAILBOXES = MetricSpec(
    "lync_owa_mailbox_policy_im_off_mailboxes",
    "gauge",
    "Mailboxes assigned this non-default OWA mailbox policy with IM off (they get no IM in OWA), counted up to "
    "mailbox_count_limit.",
    ("policy",),
)
POLICY_MAILBOXES_CAPPED = MetricSpec(
    "lync_owa_mailbox_policy_im_off_mailboxes_capped",
    "gauge",
    "1 when more mailboxes than mailbox_count_limit are assigned the policy (the count is a lower bound).",
    ("policy",),
)
CAS_MAILBOX = Shape(CAS_MAILBOX_CMDLET, (Field("Name", "str", required=False, nullable=True),))
CHECK_POLICIES_UNASSIGNED = "owa_mailbox_policies_im_off_unassigned"


class OwaImSettingsSettings(CollectorSettings):
    # The name Exchange knows this server by (-Server); default: the target's host.
    exchange_server: str | None = SettingField(default=None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9_.-]+$")
    # At most this many mailbox policies are exported one by one (the default policy always is).
    max_policies: int = SettingField(default=50, ge=1, le=1000)
    # Count the mailboxes of non-default policies with IM off (Get-CASMailbox -Filter, bounded below).
    count_policy_mailboxes: bool = True
    mailbox_count_limit: int = SettingField(default=100, ge=1, le=100_000)
    max_counted_policies: int = SettingField(default=10, ge=1, le=100)
    policies_counted_per_run: int = SettingField(default=1, ge=1, le=100)
    mailbox_count_interval: Duration = SettingField(default=3600.0)


def im_enabled(obj: dict[str, Any]) -> bool:
    return obj.get("InstantMessagingEnabled") is True


def im_type_ocs(obj: dict[str, Any]) -> bool:
    return clean_text(obj.get("InstantMessagingType")).casefold() == IM_TYPE_OCS


def is_back_end(vdir: dict[str, Any]) -> bool:
    names = (vdir.get("WebSite"), vdir.get("Name"), vdir.get("Identity"))
    return any(BACK_END_SITE in (name or "").casefold() for name in names)


def policy_name(policy: dict[str, Any]) -> str:
    return clean_text(policy.get("Name") or policy.get("Identity"))


def default_policy(policies: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The policy marked IsDefault; without that flag anywhere, the one named "Default" (Exchange's own)."""
    flagged = [p for p in policies if p.get("IsDefault") is True]
    if flagged:
        return min(flagged, key=policy_name)
    if all(p.get("IsDefault") is None for p in policies):
        return next((p for p in policies if policy_name(p).casefold() == "default"), None)
    return None


@dataclass
class OwaImSettingsState:
    no_vdir_logged: bool = False  # the warning about a missing virtual directory was given
    policies_truncated: int | None = None  # the policy count last warned about (max_policies)
    mailbox_counts: MailboxCounts = field(default_factory=MailboxCounts)
    uncounted_logged: tuple[str, ...] = ()  # policies last warned about as not countable


Context = CollectContext[OwaImSettingsSettings, OwaImSettingsState]


class OwaImSettingsCollector(Collector[OwaImSettingsSettings, OwaImSettingsState]):
    name = "owa_im_settings"
    roles = frozenset({"exchange_client_access"})
    settings_model = OwaImSettingsSettings
    state_model = OwaImSettingsState
    metrics = (CONFIG_CHECK_OK, POLICY_IM_ENABLED, POLICY_IM_TYPE_OCS, POLICY_MAILBOXES, POLICY_MAILBOXES_CAPPED)
    cmdlets = (("exchange", "Get-OwaVirtualDirectory"), ("exchange", "Get-OwaMailboxPolicy"),
               ("exchange", CAS_MAILBOX_CMDLET))
    cmdlet_parameters = {
        "Get-OwaVirtualDirectory": {"Server": None, "ShowMailboxVirtualDirectories": None},
        "Get-OwaMailboxPolicy": {},
        CAS_MAILBOX_CMDLET: {"Filter": None, "ResultSize": None},
    }

    def collect(self, ctx: Context) -> list[Sample]:
        settings = ctx.settings
        server = settings.exchange_server or ctx.target.host
        samples = self._virtual_directories(ctx, server)
        policies = self._read_policies(ctx)
        samples += self._mailbox_policies(ctx, policies, settings.max_policies)
        if settings.count_policy_mailboxes:
            samples += self._policy_mailboxes(ctx, policies)
        return samples

    def _virtual_directories(self, ctx: Context, server: str) -> list[Sample]:
        parameters = {"Server": server, "ShowMailboxVirtualDirectories": True}
        answer = ctx.run("exchange", "Get-OwaVirtualDirectory", parameters, VIRTUAL_DIRECTORY)
        front_end = [vdir for vdir in answer.objects if not is_back_end(vdir)]
        back_end = [vdir for vdir in answer.objects if is_back_end(vdir)]
        if not front_end and not ctx.state.no_vdir_logged:
            # A client-access server without an OWA virtual directory serves no OWA, and so no IM.
            ctx.log.warning("%s has no client-access OWA virtual directory", server)
        ctx.state.no_vdir_logged = not front_end
        return [
            check_sample("owa_vdir_im_enabled", bool(front_end) and all(im_enabled(v) for v in front_end)),
            check_sample("owa_vdir_im_type_ocs", bool(front_end) and all(im_type_ocs(v) for v in front_end)),
            # Enabled means both, as 001's Set-OwaVirtualDirectory does: a new directory is Enabled with type None.
            check_sample("owa_backend_vdir_im_not_enabled", not any(im_enabled(v) and im_type_ocs(v) for v in back_end)),
        ]

    @staticmethod
    def _read_policies(ctx: Context) -> list[dict[str, Any]]:
        answer = ctx.run("exchange", "Get-OwaMailboxPolicy", None, MAILBOX_POLICY)
        return [p for p in answer.objects if policy_name(p)]

    def _mailbox_policies(self, ctx: Context, policies: list[dict[str, Any]], limit: int) -> list[Sample]:
        default = default_policy(policies)
        samples: list[Sample] = []
        if default is not None:
            samples += [
                check_sample("owa_mailbox_policy_im_enabled", im_enabled(default)),
                check_sample("owa_mailbox_policy_im_type_ocs", im_type_ocs(default)),
            ]
        else:
            ctx.log.debug("no default OWA mailbox policy: mailboxes without a policy follow the virtual directory")
        # The default first, then by name; one series per policy name however the server spells it.
        ordered = sorted(policies, key=lambda p: (p is not default, policy_name(p).casefold()))
        seen: set[str] = set()
        for policy in ordered:
            name = policy_name(policy)
            key = label_value(name).casefold()  # names that look alike as labels make one series
            if key in seen:
                continue
            if len(seen) >= limit:
                if ctx.state.policies_truncated != len(ordered):
                    ctx.log.warning("%d OWA mailbox policies; exporting the first %d (max_policies)",
                                    len(ordered), limit)
                ctx.state.policies_truncated = len(ordered)
                break
            seen.add(key)
            samples.append(POLICY_IM_ENABLED.sample(1 if im_enabled(policy) else 0, policy=name))
            samples.append(POLICY_IM_TYPE_OCS.sample(1 if im_type_ocs(policy) else 0, policy=name))
        return samples

    def _policy_mailboxes(self, ctx: Context, policies: list[dict[str, Any]]) -> list[Sample]:
        """The mailboxes of each non-default policy with IM off: a bounded number of counts per run, each
        policy again only after the interval (collectors.helpers.owa_policy_mailboxes)."""
        settings, state = ctx.settings, ctx.state
        default = default_policy(policies)
        im_off = sorted((p for p in policies if p is not default and not (im_enabled(p) and im_type_ocs(p))),
                        key=lambda p: policy_name(p).casefold())
        countable = [p for p in im_off if is_safe_dn(p.get("DistinguishedName"))]
        uncountable = tuple(policy_name(p) for p in im_off if p not in countable)
        if uncountable and uncountable != state.uncounted_logged:
            ctx.log.warning("OWA mailbox policies with IM off whose DistinguishedName cannot go into a filter, not "
                            "counted: %s", ", ".join(uncountable))
        state.uncounted_logged = uncountable
        if len(countable) > settings.max_counted_policies:
            ctx.log.info("%d non-default OWA mailbox policies have IM off; counting the first %d "
                         "(max_counted_policies)", len(countable), settings.max_counted_policies)
            countable = countable[:settings.max_counted_policies]
        wanted = tuple(clean_text(p.get("DistinguishedName")) for p in countable)
        counts = state.mailbox_counts
        counts.keep_only(wanted)
        for dn in counts.due(wanted, time.monotonic(), settings.mailbox_count_interval,
                             settings.policies_counted_per_run):
            parameters = {"Filter": policy_filter(dn), "ResultSize": str(settings.mailbox_count_limit + 1)}
            try:
                answer = ctx.run("exchange", CAS_MAILBOX_CMDLET, parameters, CAS_MAILBOX)
            except CollectError as exc:
                # The counts are a report: a refused count leaves the policy uncounted, the run goes on.
                ctx.log.warning("counting the mailboxes of OWA mailbox policy %s failed: %s", dn, exc)
                counts.failed_at[dn] = time.monotonic()
                continue
            counts.failed_at.pop(dn, None)
            counts.counts[dn] = count_of(answer.objects, settings.mailbox_count_limit, time.monotonic())
        samples: list[Sample] = []
        for policy in countable:
            found = counts.counts.get(clean_text(policy.get("DistinguishedName")))
            if found is None:
                continue
            name = policy_name(policy)
            samples.append(POLICY_MAILBOXES.sample(found.mailboxes, policy=name))
            samples.append(POLICY_MAILBOXES_CAPPED.sample(1 if found.capped else 0, policy=name))
        if samples:
            assigned = any(s.value > 0 for s in samples if s.spec is POLICY_MAILBOXES)
            samples.append(check_sample(CHECK_POLICIES_UNASSIGNED, not assigned))
        elif not im_off:
            samples.append(check_sample(CHECK_POLICIES_UNASSIGNED, True))
        return samples
