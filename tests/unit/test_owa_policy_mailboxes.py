"""The pure parts of counting an OWA mailbox policy's mailboxes: which DNs may go into a filter, the
filter, the count of a capped answer, and when to count again."""

from __future__ import annotations

import pytest

from collectors.helpers.owa_policy_mailboxes import (
    MailboxCounts,
    count_of,
    is_safe_dn,
    policy_filter,
)

DN = "CN=Contractors,CN=OWA Mailbox Policies,CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=com"


@pytest.mark.parametrize("dn, safe", [
    (DN, True),
    ("CN=Default (2019),CN=OWA Mailbox Policies,CN=Contoso Corporation,DC=contoso,DC=com", True),
    ("CN=O'Brien,CN=OWA Mailbox Policies,DC=contoso,DC=com", False),  # a quote would end the filter string
    ("CN=x' -or Name -like '*", False),
    ("CN=$(Get-Process),DC=contoso,DC=com", False),
    ("CN=a`b,DC=contoso,DC=com", False),
    ("Contractors", False),  # a name, not a DN: the filter needs the DN
    ("", False),
    (None, False),
    ("CN=" + "a" * 1100, False),
])
def test_only_plain_dns_go_into_a_filter(dn, safe):
    assert is_safe_dn(dn) is safe


def test_the_documented_filter():
    assert policy_filter(DN) == f"OWAMailboxPolicy -eq '{DN}'"


def test_a_capped_answer_reads_as_at_least_the_limit():
    assert (count_of([{}] * 3, 5, 1.0).mailboxes, count_of([{}] * 3, 5, 1.0).capped) == (3, False)
    assert (count_of([{}] * 5, 5, 1.0).mailboxes, count_of([{}] * 5, 5, 1.0).capped) == (5, False)
    assert (count_of([{}] * 6, 5, 1.0).mailboxes, count_of([{}] * 6, 5, 1.0).capped) == (5, True)


KIOSK = "CN=Kiosk,DC=contoso,DC=com"


def test_counting_is_spread_over_runs_new_policies_first():
    counts = MailboxCounts()
    assert counts.due((DN, KIOSK), 100.0, 3600.0, 1) == [DN]
    counts.counts[DN] = count_of([], 10, 100.0)
    assert counts.due((DN, KIOSK), 101.0, 3600.0, 1) == [KIOSK]  # never counted goes first
    counts.counts[KIOSK] = count_of([], 10, 101.0)
    assert counts.due((DN, KIOSK), 3699.0, 3600.0, 5) == []  # both within the interval
    assert counts.due((DN, KIOSK), 3701.5, 3600.0, 5) == [DN, KIOSK]  # the oldest first
    assert counts.due((KIOSK,), 3700.5, 3600.0, 5) == []


def test_a_refused_count_is_retried_when_nothing_else_is_due_and_forgotten_policies_go():
    counts = MailboxCounts()
    counts.failed_at[DN] = 100.0
    assert counts.due((DN, KIOSK), 101.0, 3600.0, 1) == [KIOSK]  # never tried goes first
    counts.counts[KIOSK] = count_of([], 10, 102.0)
    assert counts.due((DN, KIOSK), 103.0, 3600.0, 1) == [DN]  # then the refused one, without waiting an hour
    assert counts.due((DN, KIOSK), 3703.0, 3600.0, 1) == [KIOSK]  # a stale count before a refused one
    counts.counts[DN] = count_of([], 10, 50.0)  # a refused recount keeps the older count exported
    assert counts.due((DN, KIOSK), 103.0, 3600.0, 2) == [DN]
    counts.counts[KIOSK] = count_of([{}], 10, 50.0)
    counts.keep_only((KIOSK,))
    assert counts.failed_at == {} and list(counts.counts) == [KIOSK]
