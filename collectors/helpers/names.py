"""Host names: how one is compared (:func:`fqdn`) and what counts as one (:func:`is_host_name`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from collectors.helpers.text import clean_text, trim_text

# Lync identities carry a kind prefix: "TrustedApplicationPool:owa.contoso.com", "Registrar:pool01...".
_KIND_PREFIX = re.compile(r"^[A-Za-z]+:(?!//)")
# RFC 1123 labels, plus "_" (Windows allows it in computer names); at most 253 characters in all.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


def ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address the text is, or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def fqdn(value: Any, *, strict: bool = False) -> str:
    """A host name as a server (or a user) writes it, in the form names are compared in: no trailing
    dot, case-folded.

    By default the text is cleaned (:func:`~collectors.helpers.text.clean_text`) and a Lync kind
    prefix ("TrustedApplicationPool:") is dropped. ``strict``: a name as configured, where only
    ordinary whitespace around it is trimmed, so an invisible mark or a prefix keeps it another name
    (OWA's IMServerName pasted with a U+200E names no pool) and a setting with one is refused.
    """
    if strict:
        return trim_text(value).rstrip(".").casefold()
    text = clean_text(value)
    if ip_address(text) is None:  # "abcd::1" is an IPv6 address, not a kind and a name
        text = _KIND_PREFIX.sub("", text)
    return text.rstrip(".").casefold()


def is_host_name(text: str, *, trailing_dot: bool = False) -> bool:
    """A DNS host name (any case): labels of letters, digits, '-' and '_' (not first or last), at most
    63 characters each and 253 in all. ``trailing_dot``: a fully qualified "name." is one too."""
    if trailing_dot and text.endswith("."):
        text = text[:-1]
    return _HOST_NAME.fullmatch(text) is not None


def is_host(text: str, *, trailing_dot: bool = False) -> bool:
    """A host name (:func:`is_host_name`) or an IP address."""
    return ip_address(text) is not None or is_host_name(text, trailing_dot=trailing_dot)
