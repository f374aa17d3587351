"""X.500 names as Windows cmdlets write them ("CN=pool01.contoso.com, OU=IT, O=Contoso")."""

from __future__ import annotations

import re
from typing import Any

from collectors.helpers.text import clean_text


def subject_cn(subject: Any) -> str:
    """The first CN of a subject string, unquoted and unescaped; "" when there is none.

    RDNs are separated by ',' or ';' and multi-valued ones by '+' (outside quotes, unescaped); the
    subject is cleaned first (:func:`~collectors.helpers.text.clean_text`).
    """
    for part in _split_rdns(clean_text(subject)):
        key, sep, value = part.partition("=")
        if sep and key.strip().casefold() == "cn":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return re.sub(r"\\(.)", r"\1", value).strip()
    return ""


def _split_rdns(subject: str) -> list[str]:
    """Split a DN on unescaped, unquoted ',' ';' and '+' (a multi-valued RDN counts as parts)."""
    parts, current, quoted, escaped = [], [], False, False
    for ch in subject:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            quoted = not quoted
        elif ch in ",;+" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts
