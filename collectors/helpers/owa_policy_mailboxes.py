"""How many mailboxes each OWA mailbox policy with IM off governs (check E6, beyond the default policy).

001 enables IM "on the appropriate Outlook Web App mailbox policy (or policies)": a mailbox assigned a
policy with ``InstantMessagingEnabled`` False, or ``InstantMessagingType`` not OCS, gets no IM in OWA
however the rest is set. The default policy is judged by the verdict (every mailbox without a policy
of its own follows it); another policy only matters when mailboxes are assigned it, so those are
counted.

Exchange has no count-only cmdlet. Microsoft's "Filterable properties for the Filter parameter" gives
the server-side filter: ``Get-CASMailbox -Filter "OWAMailboxPolicy -eq '<policy DN>'"`` (the property is
``msExchOWAPolicy``, and it "requires the distinguished name"). Exchange filters in the directory, but
returns one CASMailbox object per match, so the cost grows with the mailboxes counted (about 5.5 s per
1,000 simulated four-property objects through pypsrp, benchmarks/bench_policy_mailbox_count.py; a real
CASMailbox has about ninety). It is bounded: only non-default policies with IM off are counted, at most
``max_counted_policies`` of them, each with ``-ResultSize <mailbox_count_limit + 1>`` (default 100: the
count reads "at least 100" beyond it, enough to say many users are affected), at most
``policies_counted_per_run`` (default 1) calls per run, each policy again only after
``mailbox_count_interval`` (default an hour; assignments change rarely). A policy never counted goes
first, a refused count (a timeout, say) is tried again when nothing else is due; between counts the
last counts are exported. ``count_policy_mailboxes: false`` turns it off.

The filter is built from the DN the server sent. It is an OPATH string, not script, but a DN with a
quote or a character OPATH could read as syntax is not counted (logged): nothing from an answer
becomes part of a filter unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from collectors.helpers.text import clean_text

CMDLET = "Get-CASMailbox"
# Letters, digits, spaces and the few punctuation marks AD names use; no quote, no backtick, no $ or {}.
_SAFE_DN = re.compile(r"^CN=[A-Za-z0-9 _.,=\-()&@#]+$")


def is_safe_dn(dn: Any) -> bool:
    text = clean_text(dn)
    return bool(_SAFE_DN.fullmatch(text)) and len(text) <= 1024


def policy_filter(dn: str) -> str:
    """The documented filter for the mailboxes assigned the policy with this DN (checked by is_safe_dn)."""
    return f"OWAMailboxPolicy -eq '{dn}'"


@dataclass(frozen=True)
class PolicyCount:
    mailboxes: int  # at most the limit
    capped: bool  # more than the limit are assigned
    counted_at: float = 0.0  # time.monotonic()


@dataclass
class MailboxCounts:
    """The last count of each policy, by DN."""

    counts: dict[str, PolicyCount] = field(default_factory=dict)
    failed_at: dict[str, float] = field(default_factory=dict)  # policies whose last count was refused

    def due(self, wanted: tuple[str, ...], now: float, interval: float, per_run: int) -> list[str]:
        """The policies to count in this run: never tried first, then counts older than the interval (oldest
        first), then refused ones (retried while nothing else is due, so one never starves the others)."""
        never = [dn for dn in wanted if dn not in self.counts and dn not in self.failed_at]
        stale = sorted((dn for dn in wanted if dn in self.counts and dn not in self.failed_at
                        and now - self.counts[dn].counted_at >= interval), key=lambda dn: self.counts[dn].counted_at)
        failed = sorted((dn for dn in wanted if dn in self.failed_at), key=lambda dn: self.failed_at[dn])
        return (never + stale + failed)[:per_run]

    def keep_only(self, wanted: tuple[str, ...]) -> None:
        """Forget the policies no longer counted (IM turned back on, policy deleted)."""
        self.counts = {dn: count for dn, count in self.counts.items() if dn in wanted}
        self.failed_at = {dn: at for dn, at in self.failed_at.items() if dn in wanted}


def count_of(objects: list[Mapping[str, Any]], limit: int, now: float) -> PolicyCount:
    """The answer of a -ResultSize <limit + 1> call as a count."""
    return PolicyCount(min(len(objects), limit), len(objects) > limit, now)
