"""Get-CASMailbox -Filter "OWAMailboxPolicy -eq '<policy DN>'" -ResultSize <n> on /PowerShell.

Microsoft's "Filterable properties for the Filter parameter" documents the filter: OWAMailboxPolicy
(``msExchOWAPolicy``) on Get-CASMailbox and Get-Recipient, taking the policy's distinguished name. The
simulator answers only that filter (any other is refused, as a filter Exchange cannot parse is); the
mailboxes are the scenario's count per policy (``owa_mailbox_policies.<name>.mailboxes``), each a
small CASMailbox (the properties the collector does not read are left out: no capture of
Get-CASMailbox exists). ``-ResultSize`` caps the answer; without it Exchange returns 1000.
"""

from __future__ import annotations

import re

from simulator import errors, psobjects
from simulator.cmdlets.base import STRING, Invocation, Param, cmdlet
from simulator.cmdlets.exchange import owa_policy_dn

_CLASS = "Microsoft.Exchange.Management.RecipientTasks.GetCASMailbox"
_FILTER = re.compile(r"^\s*OWAMailboxPolicy\s+-eq\s+'([^']*)'\s*$", re.IGNORECASE)
_DEFAULT_RESULT_SIZE = 1000


def _result_size(text: str | None) -> int | None:
    """-ResultSize: a count, or Unlimited (None)."""
    if text is None:
        return _DEFAULT_RESULT_SIZE
    if text.strip().lower() == "unlimited":
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(text)
    return int(text)


@cmdlet(
    "Get-CASMailbox",
    _CLASS,
    "exchange",
    params=(Param("Identity", STRING, position=0), Param("Filter", STRING), Param("ResultSize", STRING),
            Param("DomainController", STRING)),
)
def get_cas_mailbox(inv: Invocation) -> None:
    match = _FILTER.match(inv.get("Filter") or "")
    if match is None:
        inv.out.error(errors.invalid_argument(
            f"Cannot bind parameter 'Filter' to the target. The simulator answers only "
            f"\"OWAMailboxPolicy -eq '<DN>'\", not {inv.get('Filter')!r}.",
            f"ParameterBindingFailed,{_CLASS}", inv.cmdlet.name))
        return
    try:
        limit = _result_size(inv.get("ResultSize"))
    except ValueError:
        inv.out.error(errors.invalid_argument(f"Cannot convert '{inv.get('ResultSize')}' to Unlimited<UInt32>.",
                                              f"ParameterBindingFailed,{_CLASS}", inv.cmdlet.name))
        return
    org = inv.view.scenario.model.exchange_org
    wanted = match.group(1).lower()
    for name, policy in (org.owa_mailbox_policies.items() if org else ()):
        if owa_policy_dn(inv, name).lower() != wanted:
            continue
        count = policy.mailboxes if limit is None else min(policy.mailboxes, limit)
        for number in range(1, count + 1):
            user = f"{name.replace(' ', '').lower()}-user{number:05d}"
            inv.out.write(psobjects.ps_object(
                ["Microsoft.Exchange.Data.Directory.Management.CASMailbox",
                 "Microsoft.Exchange.Data.Directory.Management.ADPresentationObject", "System.Object"],
                adapted={"Name": user, "PrimarySmtpAddress": f"{user}@contoso.com", "OWAEnabled": True,
                         "OwaMailboxPolicy": name},
                to_string=user,
            ))
