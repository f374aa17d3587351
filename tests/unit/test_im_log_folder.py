"""Check E2's pure parts: the bytes-written accounting, the remote listing parser and the settings."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from collectors.contract import (
    CmdletAnswer,
    CollectContext,
    CollectError,
    Deadline,
    ErrorKind,
    ErrorRecordInfo,
    ShapeError,
    TargetInfo,
)
from collectors.im_log_folder.accounting import (
    DEPARTED_FILE_GRACE_SECONDS,
    FileState,
    FolderView,
    WrittenBytesLedger,
)
from collectors.im_log_folder.collector import (
    ImLogFolderCollector,
    ImLogFolderSettings,
    ImLogFolderState,
    listing_of,
    samples_of,
)
from collectors.sources.normalize import convert


def primed(listing: dict[str, FileState] | None = None, clock=None) -> WrittenBytesLedger:
    ledger = WrittenBytesLedger(clock) if clock else WrittenBytesLedger()
    ledger.reconcile(listing or {})
    return ledger


# --- complete listings (the remote path, and every local run) ---------------------------------


def test_the_first_listing_is_the_baseline():
    ledger = WrittenBytesLedger()
    assert ledger.reconcile({"a.log": FileState(10_000, 1)}) == 0
    assert ledger.written_bytes == 0 and ledger.primed and ledger.total_bytes == 10_000


def test_growth_counts_what_was_appended():
    ledger = primed({"a.log": FileState(100, 1), "b.log": FileState(50, 2)})
    assert ledger.reconcile({"a.log": FileState(130, 1), "b.log": FileState(50, 2)}) == 30
    assert ledger.reconcile({"a.log": FileState(131, 1), "b.log": FileState(60, 2)}) == 11
    assert ledger.written_bytes == 41


def test_a_truncated_file_counts_its_new_size():
    ledger = primed({"a.log": FileState(100, 1)})
    assert ledger.reconcile({"a.log": FileState(7, 1)}) == 7


def test_a_file_replaced_under_its_name_counts_its_whole_size():
    ledger = primed({"a.log": FileState(100, 1)})
    assert ledger.reconcile({"a.log": FileState(150, 2)}) == 150


def test_deletion_adds_nothing_and_new_files_count_whole():
    ledger = primed({"a.log": FileState(100, 1), "b.log": FileState(10, 2)})
    assert ledger.reconcile({"b.log": FileState(10, 2)}) == 0
    assert ledger.file_count == 1 and ledger.total_bytes == 10
    assert ledger.reconcile({"b.log": FileState(10, 2), "c.log": FileState(25, 3)}) == 25


def test_folder_removed_then_recreated():
    ledger = primed({"a.log": FileState(100, 1)})
    assert ledger.reconcile({}) == 0 and ledger.file_count == 0
    assert ledger.reconcile({"a.log": FileState(40, 9)}) == 40
    assert ledger.written_bytes == 40


def test_a_folder_absent_at_start_counts_every_file_that_appears():
    ledger = primed({})
    assert ledger.reconcile({"a.log": FileState(40, 1)}) == 40


def test_rotation_by_rename_does_not_count_the_old_log_twice():
    ledger = primed({"im.log": FileState(100, 1)})
    # im.log grew by 10, was renamed to im.1.log, and a new im.log got 5 bytes.
    assert ledger.reconcile({"im.1.log": FileState(110, 1), "im.log": FileState(5, 2)}) == 15


def test_rotation_with_ntfs_tunnelling_shares_the_creation_time():
    # NTFS gives the new im.log the creation time of the renamed one: two files, one identity.
    created = 1_700_000_000.0
    ledger = primed({"im.log": FileState(100, created)})
    assert ledger.reconcile({"im.log": FileState(5, created), "im.1.log": FileState(110, created)}) == 15


def test_unknown_identity_follows_the_name():
    ledger = primed({"a.log": FileState(100, None)})
    assert ledger.reconcile({"a.log": FileState(120, 5)}) == 20  # a creation time appearing is no replacement
    assert ledger.reconcile({"b.log": FileState(120, None)}) == 120


def test_views():
    ledger = primed({"a.log": FileState(100, 1, modified=50.0), "b.log": FileState(1, 2, modified=70.0)})
    assert ledger.newest_write == 70.0
    assert FolderView.of(ledger, True, False) == FolderView(True, True, 2, 101, 70.0, 0)
    assert FolderView.of(ledger, False, True) == FolderView(False, True, 0, 0, None, 0)


# --- single events (the local watcher) ----------------------------------------------------------


def test_events_before_the_baseline_are_ignored():
    ledger = WrittenBytesLedger()
    assert ledger.update({"a.log": FileState(100, 1)}) == 0
    assert ledger.reconcile({"a.log": FileState(100, 1)}) == 0


def test_inotify_order_moved_then_created():
    ledger = primed({"im.log": FileState(150, 1)})
    assert ledger.update({"im.1.log": FileState(150, 1), "im.log": None}) == 0
    assert ledger.update({"im.log": FileState(30, 2)}) == 30
    assert ledger.files == {"im.1.log": FileState(150, 1), "im.log": FileState(30, 2)}


def test_polling_order_created_before_moved():
    # The polling observer reports the new im.log before the move of the old one.
    ledger = primed({"im.log": FileState(150, 1)})
    assert ledger.update({"im.log": FileState(30, 2)}) == 30
    assert ledger.update({"im.1.log": FileState(150, 1), "im.log": FileState(30, 2)}) == 0
    assert ledger.written_bytes == 30 and ledger.total_bytes == 180


def test_a_move_reported_as_delete_then_create():
    # inotify could not pair the two halves of the rename: "im.log deleted", "im.1.log created".
    ledger = primed({"im.log": FileState(150, 1)})
    assert ledger.update({"im.log": None}) == 0
    assert ledger.update({"other.log": FileState(150, 2)}) == 150  # unrelated events in between
    assert ledger.update({"im.1.log": FileState(150, 1)}) == 0
    assert ledger.update({"im.log": FileState(30, 3)}) == 30


def test_a_deleted_file_is_claimed_only_by_one_at_least_as_large():
    ledger = primed({"old.log": FileState(5_000, 1)})
    ledger.update({"old.log": None})
    assert ledger.update({"new.log": FileState(0, 1)}) == 0  # a new log that got the freed inode
    assert ledger.update({"new.log": FileState(40, 1)}) == 40


def test_a_replaced_file_is_not_claimed_after_the_grace_period():
    now = [0.0]
    ledger = primed({"im.log": FileState(150, 1)}, clock=lambda: now[0])
    ledger.update({"im.log": FileState(30, 2)})
    now[0] += DEPARTED_FILE_GRACE_SECONDS + 1
    # The inode came back much later: a new file that reuses it, not the old log renamed.
    assert ledger.update({"other.log": FileState(200, 1)}) == 200


def test_a_complete_listing_drops_unclaimed_replaced_files():
    ledger = primed({"im.log": FileState(150, 1)})
    ledger.update({"im.log": FileState(30, 2)})
    ledger.reconcile({"im.log": FileState(30, 2)})
    assert ledger.update({"other.log": FileState(200, 1)}) == 200


def test_forget_all_adds_nothing():
    ledger = primed({"a.log": FileState(100, 1)})
    ledger.forget_all()
    assert ledger.written_bytes == 0 and ledger.file_count == 0
    assert ledger.update({"a.log": FileState(10, 7)}) == 10


# --- the counter against a model of a folder -----------------------------------------------------

_NAMES = ("im.log", "im.1.log", "im.2.log", "other.log")
_OPS = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(_NAMES), st.integers(0, 500)),
    st.tuples(st.just("create"), st.sampled_from(_NAMES), st.integers(0, 500)),
    st.tuples(st.just("rename"), st.sampled_from(_NAMES), st.sampled_from(_NAMES)),
    st.tuples(st.just("truncate"), st.sampled_from(_NAMES), st.just(0)),
    st.tuples(st.just("delete"), st.sampled_from(_NAMES), st.just(0)),
    st.tuples(st.just("rmdir"), st.just(""), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_OPS, max_size=40), seen_by=st.sampled_from(["listings", "events", "unpaired_moves"]))
def test_the_counter_equals_the_bytes_appended_and_never_decreases(ops, seen_by):
    """Append/create/rename/truncate/delete, seen by events or listings: exact, and monotonic.

    ``unpaired_moves``: a rename arrives as two events, the old name gone, then the new name."""
    events = seen_by != "listings"
    folder: dict[str, tuple[int, int]] = {"im.log": (100, 1)}  # name -> (size, inode); inodes never reused
    next_inode = [2]
    ledger = primed({n: FileState(s, i) for n, (s, i) in folder.items()}, clock=lambda: 0.0)
    appended = 0
    last = 0
    for op, name, arg in ops:
        touched: list[str] = []
        if op == "append" and name in folder:
            size, inode = folder[name]
            folder[name] = (size + arg, inode)
            appended += arg
            touched = [name]
        elif op == "create":
            folder[name] = (arg, next_inode[0])
            next_inode[0] += 1
            appended += arg
            touched = [name]
        elif op == "rename" and name in folder and arg != name:
            folder[arg] = folder.pop(name)
            touched = [arg, name]
        elif op == "truncate" and name in folder:
            folder[name] = (0, folder[name][1])
            touched = [name]
        elif op == "delete" and name in folder:
            del folder[name]
            touched = [name]
        elif op == "rmdir":
            folder.clear()
            if events:
                ledger.forget_all()  # what the watcher does when the folder goes
        current = {n: FileState(s, i) for n, (s, i) in folder.items()}
        if seen_by == "unpaired_moves" and op == "rename" and len(touched) == 2:
            ledger.update({touched[1]: None})
            ledger.update({touched[0]: current[touched[0]]})
        elif events:
            ledger.update({n: current.get(n) for n in touched})
        else:
            ledger.reconcile(current)
        assert ledger.written_bytes >= last
        last = ledger.written_bytes
        assert ledger.written_bytes == appended
        assert ledger.total_bytes == sum(s for s, _ in folder.values())
    assert ledger.reconcile({n: FileState(s, i) for n, (s, i) in folder.items()}) == 0


# --- the remote listing ---------------------------------------------------------------------------


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def test_listing_of_get_childitem_objects():
    objects = [
        {"Name": " InstantMessaging_1.LOG\u200e", "Length": 10,
         "CreationTimeUtc": _utc(100), "LastWriteTimeUtc": _utc(200)},
        {"Name": "InstantMessaging_2.log", "Length": 0, "CreationTimeUtc": None, "LastWriteTimeUtc": None},
    ]
    assert listing_of(objects) == {
        "instantmessaging_1.log": FileState(10, 100.0, 200.0),
        "instantmessaging_2.log": FileState(0, None, None),
    }


@pytest.mark.parametrize("obj", [{"Name": "x", "Length": -1}, {"Name": " \u200b", "Length": 1}])
def test_listing_refuses_nonsense_as_shape(obj):
    with pytest.raises(CollectError) as caught:
        listing_of([{**obj, "CreationTimeUtc": None, "LastWriteTimeUtc": None}], "ex01 Get-ChildItem")
    assert caught.value.kind == ErrorKind.SHAPE and "ex01" in str(caught.value)


def test_samples_leave_out_the_newest_write_without_files():
    names = {s.spec.name: s.value for s in samples_of(FolderView(False, True, 0, 0, None, 42))}
    assert names == {
        "lync_owa_im_log_folder_present": 0,
        "lync_owa_im_log_parent_folder_present": 1,
        "lync_owa_im_log_files": 0,
        "lync_owa_im_log_bytes": 0,
        "lync_owa_im_log_written_bytes_total": 42,
    }


# --- settings -------------------------------------------------------------------------------------


def test_default_settings_are_remote_with_a_derived_path():
    s = ImLogFolderSettings()
    assert s.mode == "remote" and s.path is None and s.observer == "native"


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "local"},
        {"mode": "local", "path": "relative/folder"},
        {"mode": "remote", "path": "Logging\\OWA"},
        {"mode": "local", "path": "/x", "observer": "inotify"},
        {"mode": "local", "path": "/x", "poll_interval": 0},
        {"mode": "ftp"},
        {"paht": "C:\\x"},
    ],
)
def test_bad_settings_are_refused(values):
    with pytest.raises(ValidationError):
        ImLogFolderSettings(**values)


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "local", "path": "/mnt/ex01/InstantMessaging", "observer": "polling", "poll_interval": 2.0},
        {"path": "D:\\Exchange\\Logging\\OWA\\InstantMessaging"},
        {"path": "\\\\ex01\\d$\\Exchange\\Logging\\OWA\\InstantMessaging"},
    ],
)
def test_good_settings(values):
    ImLogFolderSettings(**values)


# --- the remote reading, against canned answers ----------------------------------------------------

SETUP = "Get-ItemProperty"
LIST = "Get-ChildItem"
ITEM = "Get-Item"
IM = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Logging\\OWA\\InstantMessaging"


class CannedRunner:
    """A CmdletRunner that answers by cmdlet from canned objects, converted as the remoting source does."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers  # cmdlet -> (objects, error ids)
        self.calls: list[tuple[str, dict]] = []

    def where(self, endpoint_kind):
        return "ex01:5985/wsman (Microsoft.PowerShell)"

    def run(self, endpoint_kind, cmdlet, parameters, shape, deadline, accept_error_ids):
        self.calls.append((cmdlet, dict(parameters or {})))
        objects, error_ids = self.answers[cmdlet]
        assert set(error_ids) <= set(accept_error_ids)
        try:
            converted = [convert(shape, o) for o in objects]
        except ShapeError as exc:  # as the remoting layer reports it
            raise CollectError(ErrorKind.SHAPE, cmdlet, str(exc)) from None
        return CmdletAnswer(converted, [ErrorRecordInfo(e, "", "") for e in error_ids])


class CannedContext(CollectContext[ImLogFolderSettings, ImLogFolderState]):
    """A real context for one job on ex01 whose cmdlets answer from ``answers``."""

    def __init__(self, answers: dict, **settings) -> None:
        self.canned = CannedRunner(answers)
        super().__init__(target=TargetInfo("ex01", "ex01.contoso.com", frozenset({"exchange_mailbox"})),
                         settings=ImLogFolderSettings(**settings), state=ImLogFolderState(), deadline=Deadline(60),
                         runner=self.canned, log=logging.LoggerAdapter(logging.getLogger(__name__), {}))

    @property
    def calls(self) -> list[tuple[str, dict]]:
        return self.canned.calls


def log_file(name: str, length: int) -> dict:
    return {"Name": name, "Length": length, "FullName": f"{IM}\\{name}",
            "CreationTimeUtc": "2024-05-01T10:00:00.1234567Z", "LastWriteTimeUtc": "2024-05-02T10:00:00.0000000Z"}


def metrics_of(ctx) -> dict[str, float]:
    return {s.spec.name: s.value for s in ImLogFolderCollector().collect(ctx)}


def test_the_install_path_is_cleaned_and_read_once():
    ctx = CannedContext({
        SETUP: ([{"MsiInstallPath": "\u200e C:\\Program Files\\Microsoft\\Exchange Server\\V15\\ \r\n"}], []),
        LIST: ([log_file("InstantMessaging_1.LOG", 10)], []),
    })
    assert metrics_of(ctx)["lync_owa_im_log_folder_present"] == 1
    assert ctx.calls[1] == (LIST, {"LiteralPath": IM, "File": None})
    metrics_of(ctx)
    assert [cmdlet for cmdlet, _ in ctx.calls] == [SETUP, LIST, LIST]


def test_a_missing_setup_key_fails_with_the_way_out():
    ctx = CannedContext({SETUP: ([], ["PathNotFound"])})
    with pytest.raises(CollectError) as caught:
        metrics_of(ctx)
    assert caught.value.kind == ErrorKind.COMMAND and "path" in caught.value.message


@pytest.mark.parametrize("value", [None, "", "Exchange\\V15", ["C:\\x"]])
def test_an_unusable_install_path_is_a_shape_error(value):
    ctx = CannedContext({SETUP: ([{"MsiInstallPath": value}], [])})
    with pytest.raises(CollectError) as caught:
        metrics_of(ctx)
    assert caught.value.kind == ErrorKind.SHAPE and "MsiInstallPath" in caught.value.message


def test_an_absent_folder_looks_at_its_parent_and_reads_the_install_path_again():
    ctx = CannedContext({
        SETUP: ([{"MsiInstallPath": "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\"}], []),
        LIST: ([], ["PathNotFound"]),
        ITEM: ([{"Name": "OWA"}], []),
    })
    metrics = metrics_of(ctx)
    assert metrics["lync_owa_im_log_folder_present"] == 0 and metrics["lync_owa_im_log_parent_folder_present"] == 1
    assert ctx.calls[2] == (ITEM, {"LiteralPath": IM.rsplit("\\", 1)[0]})
    assert ctx.state.install_path is None


def test_a_file_where_the_folder_should_be_is_no_folder():
    ctx = CannedContext({LIST: ([{**log_file("x", 5), "FullName": IM.upper()}], []), ITEM: ([{"Name": "OWA"}], [])},
                        path=IM)
    assert metrics_of(ctx)["lync_owa_im_log_folder_present"] == 0
