"""collectors.helpers.x509_names: the first CN of a subject as cmdlets write it.

The cases are the union of the Lync certificate collector's and the Exchange (IM certificate) one's."""

from __future__ import annotations

import pytest

from collectors.helpers.x509_names import subject_cn


@pytest.mark.parametrize("subject, cn", [
    ("CN=pool01.contoso.com, OU=IT, O=Contoso, L=Redmond, S=WA, C=US", "pool01.contoso.com"),
    ("CN=mail.contoso.com, OU=IT, O=Contoso, C=US", "mail.contoso.com"),
    ("C=US, O=Contoso, CN=contoso.com", "contoso.com"),
    ("OU=IT, cn = EX01", "EX01"),
    ("CN=Microsoft Exchange Server Auth Certificate", "Microsoft Exchange Server Auth Certificate"),
    ('CN="Contoso, Inc. OAuth", O=Contoso', "Contoso, Inc. OAuth"),  # quoted: the comma is the CN's
    ('CN="Contoso\\, Inc", O=Contoso', "Contoso, Inc"),
    (r"CN=Contoso\, Inc, O=Contoso", "Contoso, Inc"),
    ("cn = sip.contoso.com ; o=x", "sip.contoso.com"),
    ("CN=a.contoso.com+OU=x", "a.contoso.com"),  # a multi-valued RDN
    ("CN=first.contoso.com, CN=second.contoso.com", "first.contoso.com"),
    ("\u200eCN=contoso.com\u200f", "contoso.com"),
    ("O=No Common Name", ""),
    ("O=Contoso, C=US", ""),
    ("", ""),
    (None, ""),
])
def test_subject_cn(subject, cn):
    assert subject_cn(subject) == cn
