"""The IM-initialisation failure messages of check E1 map to a fixed reason set."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.owa_events.reasons import (
    EVENT_ID_IM_INITIALISED,
    IM_FAILURE_REASONS,
    classify_event_data,
    classify_im_failure,
)
from tests.evtx_writer import OWA_FAILURE_MESSAGES

THUMB = "EA5A3324A8C4F0A5D7C5E3B3A1F8D2C6B9E0F11D"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("No registry setting for IM Provider", "ucma_missing"),
        ("IM provider not found", "ucma_missing"),
        ("Instant Messaging Server name is set to null or empty", "server_name_empty"),
        ("Instant Messaging Certificate Thumbprint is null or empty", "thumbprint_empty"),
        (f"IM Certificate with thumbprint {THUMB} could not be found", "certificate_not_found"),
        (f"IM Certificate with thumbprint {THUMB} has expired", "certificate_expired"),
        (f"IM Certificate with thumbprint {THUMB} has not become valid yet", "certificate_not_yet_valid"),
        (f"IM Certificate with thumbprint {THUMB} does not have a private key", "certificate_no_private_key"),
        ("The IM endpoint manager was initialized successfully.", "other"),
        ("Something unexpected happened", "other"),
        ("", "other"),
    ],
)
def test_messages_of_check_e1(text, reason):
    assert classify_im_failure(text) == reason


def test_case_whitespace_and_invisible_characters_do_not_matter():
    assert classify_im_failure("  instant   MESSAGING server NAME\r\n is set to NULL or empty.  ") == "server_name_empty"
    assert classify_im_failure(f"IM certificate with thumbprint \u200e{THUMB}\n\thas  EXPIRED") == "certificate_expired"
    assert classify_im_failure("no registry setting\nfor im provider") == "ucma_missing"


def test_messages_embedded_in_longer_event_text():
    text = (f"Failed to initialize the IM endpoint manager. Exception: IM Certificate with thumbprint {THUMB} "
            "does not have a private key. Check the certificate store.")
    assert classify_im_failure(text) == "certificate_no_private_key"


def test_fixture_messages_classify_as_their_reason():
    for reason, message in OWA_FAILURE_MESSAGES.items():
        assert classify_im_failure(message) == reason


def test_event_data_strings_are_joined():
    assert classify_event_data(("MSExchangeOWAAppPool", "IM provider not found")) == "ucma_missing"
    assert classify_event_data(()) == "other"


def test_constants():
    assert EVENT_ID_IM_INITIALISED == 112
    assert IM_FAILURE_REASONS[-1] == "other"
    assert len(set(IM_FAILURE_REASONS)) == len(IM_FAILURE_REASONS) == 8


def test_non_text_is_other():
    assert classify_im_failure(None) == "other"  # type: ignore[arg-type]


@given(st.text(max_size=300))
def test_any_text_gives_a_known_reason(text):
    assert classify_im_failure(text) in IM_FAILURE_REASONS
