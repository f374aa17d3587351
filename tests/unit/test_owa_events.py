"""Check E1 (collector owa_events): the pure parts, without a server or a watcher."""

from __future__ import annotations

import datetime as dt
import logging
import struct

import pytest
from pydantic import ValidationError

from collectors.owa_events import files as owa_events_files
from collectors.owa_events.collector import OwaEventsCollector, OwaEventsSettings
from collectors.owa_events.files import ComputerFilter, KnownEvents, event_key
from collectors.owa_events.reasons import IM_FAILURE_REASONS, im_failure_reason
from collectors.owa_events.remote import (
    Record,
    RemoteCursor,
    new_records_filter,
    take_in,
    to_record,
    xpath,
)
from collectors.owa_events.tally import METRICS, Meaning, Tally, meaning_of
from collectors.sources.evtx import (
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    ProviderEvent,
    scan_file,
)
from simulator.cmdlets.queries import event_xpath
from tests.evtx_writer import OWA_FAILURE_MESSAGES, application_log, corrupt_chunk

LOG = logging.getLogger("test")
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


# --- what an event means ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "event_id, level, text, meaning",
    [
        (112, 4, "The IM endpoint manager was initialized successfully.", Meaning("im_initialised")),
        (112, 0, "", Meaning("im_initialised")),  # the id is what counts, even without a message
        (113, 2, "The IM endpoint manager failed to initialize: IM provider not found.",
         Meaning("im_failure", "ucma_missing")),
        (113, 3, "Instant Messaging Certificate Thumbprint is null or empty",
         Meaning("im_failure", "thumbprint_empty")),
        (9999, 2, "The IM endpoint manager failed to initialize: the Lync pool did not answer.",
         Meaning("im_failure", "other")),
        (113, 4, "IM provider not found", None),  # information, not a failure
        (17, 2, "Outlook Web App could not connect to the mailbox server.", None),  # OWA's, but not IM
        (113, None, "IM provider not found", None),
    ],
)
def test_meaning_of_events(event_id, level, text, meaning):
    assert meaning_of(event_id, level, text) == meaning


def test_every_fixture_failure_message_is_an_im_failure_of_its_reason():
    for reason, message in OWA_FAILURE_MESSAGES.items():
        assert im_failure_reason(message) == reason
    assert im_failure_reason("The IM endpoint manager was initialized successfully.") is None
    assert im_failure_reason("") is None and im_failure_reason(None) is None  # type: ignore[arg-type]


# --- the tally --------------------------------------------------------------------------------------

EVTX_SERIES = {"lync_owa_evtx_records_skipped_total", "lync_owa_evtx_chunks_skipped_total",
               "lync_owa_evtx_other_computer_events_total", "lync_owa_evtx_files_unreadable"}
TIMES = {"lync_owa_im_initialised_timestamp_seconds", "lync_owa_im_initialisation_last_failure_timestamp_seconds"}


def test_every_reason_is_exported_at_zero_from_the_start_and_times_only_once_seen():
    samples = Tally().samples(reads_evtx=True)
    names = {s.spec.name for s in samples}
    assert names == {m.name for m in METRICS} - TIMES
    failures = {s.label_values[0]: s.value for s in samples if s.spec.name == "lync_owa_im_initialisation_failures_total"}
    assert failures == dict.fromkeys(IM_FAILURE_REASONS, 0.0)


def test_the_evtx_series_exist_only_when_evtx_files_are_read():
    tally = Tally()
    tally.observe(Meaning("im_failure", "ucma_missing"), 120.0, counted=True)
    remote = {s.spec.name for s in tally.samples(reads_evtx=False)}
    assert not remote & EVTX_SERIES
    assert EVTX_SERIES <= {s.spec.name for s in tally.samples(reads_evtx=True)}
    last = [(s.label_values, s.value) for s in tally.samples(reads_evtx=False)
            if s.spec.name == "lync_owa_im_initialisation_last_failure_timestamp_seconds"]
    assert last == [(("ucma_missing",), 120.0)]  # the reasons never seen have no time


def test_history_sets_times_but_only_counted_events_count():
    tally = Tally()
    assert tally.observe(Meaning("im_initialised"), 100.0, counted=False)
    assert not tally.observe(Meaning("im_initialised"), 50.0, counted=True)  # older than the newest
    tally.observe(Meaning("im_failure", "certificate_expired"), 120.0, counted=False)
    tally.observe(Meaning("im_failure", "certificate_expired"), 110.0, counted=True)
    assert tally.initialised_at == 100.0
    assert tally.events == {"im_initialised": 1, "im_failure": 1}
    assert tally.failures["certificate_expired"] == 1 and tally.last_failure["certificate_expired"] == 120.0


# --- remote: filters and RecordIds --------------------------------------------------------------------

def _sim_matches(filter_xpath: str, **record) -> bool:
    base = {"provider": "MSExchange OWA", "id": 112, "record_id": 1, "level": 4, "task": 0, "time": NOW}
    return event_xpath(filter_xpath, NOW)({**base, **record})


def test_filters_name_the_provider_and_parse_as_event_log_xpath():
    assert xpath() == "*[System[Provider[@Name='MSExchange OWA']]]"
    assert _sim_matches(xpath("EventID=112"))
    assert not _sim_matches(xpath("EventID=112"), provider="MSExchange ADAccess")


def test_steady_filter_asks_for_new_records_the_newest_of_each_kind_and_a_cleared_logs_records():
    since = (NOW - dt.timedelta(minutes=6)).timestamp()
    cursor = RemoteCursor(high=500, remembered={480: None, 490: None, 500: None},
                          newest={"im_initialised": 480, "ucma_missing": 490})
    text = new_records_filter(cursor, since)
    assert "EventRecordID > 500" in text and "EventRecordID < 480" in text
    assert "EventRecordID = 480" in text and "EventRecordID = 490" in text
    old = NOW - dt.timedelta(hours=3)
    assert _sim_matches(text, record_id=501, time=old)  # new
    assert _sim_matches(text, record_id=480, time=old)  # the newest 112 again
    assert _sim_matches(text, record_id=490, time=old)  # the newest ucma_missing failure again
    assert not _sim_matches(text, record_id=500, time=NOW)  # already taken in
    assert not _sim_matches(text, record_id=470, time=old)  # old
    assert _sim_matches(text, record_id=3, time=NOW)  # written since the last query, below every id: cleared
    assert "EventRecordID = " not in new_records_filter(cursor, since, refresh=False)
    empty = new_records_filter(RemoteCursor(), since)
    assert _sim_matches(empty, record_id=7, time=NOW) and not _sim_matches(empty, record_id=7, time=old)


def _rec(record_id: int, event_id: int = 113, when: float = 1000.0, reason: str | None = "ucma_missing") -> Record:
    meaning = Meaning("im_initialised") if event_id == 112 else Meaning("im_failure", reason)
    return Record(record_id, event_id, when, meaning)


def test_take_in_counts_new_records_once_and_rereads_the_newest_of_each_kind():
    cursor, tally = RemoteCursor(), Tally()
    take_in(cursor, tally, [_rec(10, 112, when=500.0)], counted=False, log=LOG)
    assert cursor.high == 10 and cursor.newest == {"im_initialised": 10} and tally.events["im_initialised"] == 0
    take_in(cursor, tally, [_rec(10, 112, when=560.0), _rec(11, when=800.0), _rec(12, when=900.0)], counted=True,
            log=LOG, refreshed=True)
    assert tally.failures["ucma_missing"] == 2 and tally.initialised_at == 560.0 and cursor.high == 12
    assert cursor.newest == {"im_initialised": 10, "ucma_missing": 12} and tally.last_failure["ucma_missing"] == 900
    # The same records again (the answer's times are the server's): nothing counted twice.
    take_in(cursor, tally, [_rec(10, 112, when=570.0), _rec(12, when=910.0)], counted=True, log=LOG, refreshed=True)
    assert tally.failures["ucma_missing"] == 2 and tally.events["im_initialised"] == 0
    assert tally.initialised_at == 570.0 and tally.last_failure["ucma_missing"] == 910.0


def test_a_newest_failure_gone_from_the_log_is_no_longer_reported_but_the_last_112_stays():
    cursor, tally = RemoteCursor(), Tally()
    take_in(cursor, tally, [_rec(10, 112, when=500.0), _rec(11, when=600.0)], counted=False, log=LOG)
    take_in(cursor, tally, [], counted=True, log=LOG, refreshed=True)  # both records are gone
    assert tally.last_failure["ucma_missing"] == 0.0 and "ucma_missing" not in cursor.newest
    assert tally.initialised_at == 500.0 and cursor.newest == {"im_initialised": 10}
    take_in(cursor, tally, [], counted=True, log=LOG, refreshed=False)  # a later page asks for nothing again
    assert tally.initialised_at == 500.0


def test_a_cleared_log_is_noticed_and_its_new_records_counted(caplog):
    cursor, tally = RemoteCursor(), Tally()
    take_in(cursor, tally, [_rec(n, when=float(n)) for n in range(990, 1001)], counted=False, log=LOG)
    with caplog.at_level(logging.INFO):
        take_in(cursor, tally, [_rec(1, when=2000.0), _rec(2, 112, when=2001.0)], counted=True, log=LOG,
                refreshed=True)
    assert "cleared" in caplog.text
    assert cursor.high == 2 and set(cursor.remembered) == {1, 2}
    assert cursor.newest == {"im_initialised": 2, "ucma_missing": 1}
    assert tally.failures["ucma_missing"] == 1 and tally.events["im_initialised"] == 1
    assert tally.last_failure["ucma_missing"] == 2000.0
    take_in(cursor, tally, [_rec(3, when=2002.0)], counted=True, log=LOG)
    assert tally.failures["ucma_missing"] == 2


def test_remembered_record_ids_are_bounded(monkeypatch):
    from collectors.owa_events import remote as owa_events_remote

    monkeypatch.setattr(owa_events_remote, "REMEMBERED_IDS", 3)
    cursor = RemoteCursor()
    for n in (5, 6, 7, 8):
        cursor.remember(n)
    assert list(cursor.remembered) == [6, 7, 8] and cursor.high == 8


def test_records_of_other_providers_are_dropped_and_the_message_falls_back_to_properties():
    when = NOW
    base = {"RecordId": 3, "Id": 113, "TimeCreated": when, "Level": 2}
    assert to_record({**base, "ProviderName": "MSExchange ADAccess", "Message": "IM provider not found"}) is None
    record = to_record({**base, "ProviderName": " msexchange owa ", "Message": None,
                        "Properties": [{"Value": "IM provider not found"}, {"Value": 7}]})
    assert record == Record(3, 113, when.timestamp(), Meaning("im_failure", "ucma_missing"))


# --- files: each event once ---------------------------------------------------------------------------

def _event(record_id: int, when: dt.datetime, computer: str = "EX01.contoso.com") -> ProviderEvent:
    return ProviderEvent(record_id, 112, when, 4, "MSExchange OWA", computer, ())


def test_an_event_is_known_by_computer_record_id_and_time():
    known = KnownEvents()
    first = _event(7, NOW)
    assert known.add(event_key(first), NOW.timestamp())
    assert not known.add(event_key(_event(7, NOW, "ex01.CONTOSO.com ")), NOW.timestamp())  # same event
    later = NOW + dt.timedelta(hours=1)
    assert known.add(event_key(_event(7, later)), later.timestamp())  # a cleared log reused the id
    assert known.add(event_key(_event(7, NOW, "EX02.contoso.com")), NOW.timestamp())


def test_forgotten_events_are_old_news_not_new(monkeypatch):
    monkeypatch.setattr(owa_events_files, "REMEMBERED_EVENTS", 4)
    known = KnownEvents()
    for n in range(5):
        assert known.add(("ex01", n, n), float(n))
    assert len(known.times) <= 4 and known.horizon is not None
    assert not known.add(("ex01", 0, 0), 0.0)  # forgotten, but not counted again
    assert known.add(("ex01", 9, 9), 9.0)


# --- settings ---------------------------------------------------------------------------------------

def test_settings_defaults_work_against_a_server():
    settings = OwaEventsSettings()
    assert settings.source == "remote" and settings.lookback == 86400.0 and settings.max_events == 500
    assert OwaEventsCollector.cmdlets == (("windows", "Get-WinEvent"),)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"source": "files"}, "needs path"),
        ({"path": "/srv/evtx"}, "apply to source files only"),
        ({"observer": "polling"}, "apply to source files only"),
        ({"computer": "ex01"}, "apply to source files only"),
        ({"source": "files", "path": "/srv/evtx", "computer": ""}, "at least 1 character"),
        ({"lookback": "5m"}, "at least 10m"),
        ({"source": "eventlog"}, "remote"),
        ({"max_events": 0}, "greater than or equal to 1"),
        ({"paths": "/srv"}, "Extra inputs"),
    ],
)
def test_settings_mistakes_are_named(raw, message):
    with pytest.raises(ValidationError, match=message):
        OwaEventsSettings.model_validate(raw)


def test_a_relative_path_is_relative_to_the_configuration_file():
    settings = OwaEventsSettings.model_validate({"source": "files", "path": "exports/ex01"},
                                                context={"base_dir": "/etc/lync-owa-exporter"})
    assert settings.path == "/etc/lync-owa-exporter/exports/ex01" and settings.observer == "native"


# --- evtx_scan: a damaged record is counted once ------------------------------------------------------

def test_damaged_records_of_an_untrusted_chunk_are_not_counted_again_by_an_incremental_scan(tmp_path):
    writer = application_log(1500, 10, seed=41)
    path = tmp_path / "Application.evtx"
    writer.write(path)
    data = bytearray(corrupt_chunk(path.read_bytes(), 1, "records"))
    crc_at = FILE_HEADER_SIZE + CHUNK_SIZE + 0x7C
    struct.pack_into("<I", data, crc_at, struct.unpack_from("<I", data, crc_at)[0] ^ 0xFFFFFFFF)  # untrusted
    path.write_bytes(bytes(data))
    first = scan_file(path)
    assert first.stats.records_unreadable >= 1
    application_log(200, 2, seed=42, writer=writer)
    writer.write(path, append=True)  # appends: chunk 1 keeps its damage
    second = scan_file(path, cursor=first.cursor)
    assert second.reset is None and len(second.events) == 2
    assert second.stats.records_unreadable == 0
    assert scan_file(path).stats.records_unreadable == first.stats.records_unreadable  # a fresh scan still counts


@pytest.mark.parametrize(
    "wanted, computer, accepted",
    [
        ("ex01.contoso.com", "EX01.contoso.com", True),
        ("ex01.contoso.com", "EX01", True),  # a NetBIOS-style Computer
        ("EX01", "ex01.contoso.com", True),  # a short name in the setting
        ("ex01.contoso.com", "ex02.contoso.com", False),
        ("ex01.contoso.com", "ex01b.contoso.com", False),  # a prefix is not a name
        ("ex01", "", False),
        ("*", "anything.example", True),
    ],
)
def test_computer_names_match_by_fqdn_or_first_label(wanted, computer, accepted):
    assert ComputerFilter(wanted).accepts(computer) is accepted
