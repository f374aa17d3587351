"""Map an OWA IM-initialisation failure message (check E1) to a fixed, bounded reason.

The reason becomes a label value, so it must come from a closed set: free text never reaches a label.
Messages are matched case-insensitively on their distinctive phrases, with runs of whitespace (line
breaks in event text included) and invisible format characters ignored.
"""

from __future__ import annotations

import re
from typing import Iterable

from collectors.helpers.text import clean_words

EVENT_ID_IM_INITIALISED = 112  # MSExchange OWA: "the IM endpoint manager was initialised successfully"

IM_FAILURE_REASONS = (
    "ucma_missing",
    "server_name_empty",
    "thumbprint_empty",
    "certificate_not_found",
    "certificate_expired",
    "certificate_not_yet_valid",
    "certificate_no_private_key",
    "other",
)

# First match wins. The certificate phrases follow "IM Certificate with thumbprint <x> ..."; the
# empty-thumbprint check comes before them because its message also names the certificate.
_RULES = (
    ("ucma_missing", r"no registry setting for im provider|im provider not found"),
    ("server_name_empty", r"instant messaging server name is (?:set to )?null or empty"),
    ("thumbprint_empty", r"instant messaging certificate thumbprint is (?:set to )?null or empty"),
    ("certificate_not_yet_valid", r"has not (?:yet )?become valid(?: yet)?"),
    ("certificate_expired", r"has expired"),
    ("certificate_no_private_key", r"does not have a private key"),
    ("certificate_not_found", r"certificate with thumbprint .*could not be found"),
)
_COMPILED = tuple((reason, re.compile(pattern)) for reason, pattern in _RULES)


def _normalise(text: str) -> str:
    # Without invisible marks (the U+200E an MMC copy adds); line breaks and runs of spaces as one space.
    return clean_words(text).casefold()


def classify_im_failure(text: str) -> str:
    """One of IM_FAILURE_REASONS for a failure message; ``other`` for anything unrecognised."""
    if not isinstance(text, str) or not text:
        return "other"
    normalised = _normalise(text)
    for reason, pattern in _COMPILED:
        if pattern.search(normalised):
            return reason
    return "other"


def classify_event_data(data: Iterable[str]) -> str:
    """Classify an event's EventData strings (the message may be any one of them)."""
    return classify_im_failure(_joined(data))


# An error of the provider that names IM but none of the known causes is an IM failure of reason
# ``other``; an error that does not name IM at all (OWA logs many) is none of our business.
_NAMES_IM = re.compile(r"\bim endpoint manager|\binstant messaging|\bim (?:provider|certificate|server)"
                       r"|owa\.?im|iminitiali[sz]ation")
_SAYS_FAILED = re.compile(r"fail|could not|cannot|can't|unable|error|exception|not found|invalid|null or empty"
                          r"|expired|not (?:yet )?become valid|private key")


def im_failure_reason(text: str) -> str | None:
    """The reason of an IM-initialisation failure message, or None when the text is not one.

    Only for warning/error events of the OWA provider: a known cause gives its reason, a text that
    names IM and says something failed gives ``other``, anything else None.
    """
    if not isinstance(text, str) or not text:
        return None
    reason = classify_im_failure(text)
    if reason != "other":
        return reason
    normalised = _normalise(text)
    return "other" if _NAMES_IM.search(normalised) and _SAYS_FAILED.search(normalised) else None


def event_data_failure_reason(data: Iterable[str]) -> str | None:
    """:func:`im_failure_reason` over an event's EventData strings."""
    return im_failure_reason(_joined(data))


def _joined(data: Iterable[str]) -> str:
    return " ".join(s for s in data if isinstance(s, str))
