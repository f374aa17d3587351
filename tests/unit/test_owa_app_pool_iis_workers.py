"""Splitting w3wp.exe command lines and telling which application pool a worker serves."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from collectors.helpers.iis_workers import (
    app_pool_of,
    pool_workers,
    serves_pool,
    split_command_line,
)

OWA = "MSExchangeOWAAppPool"
# As IIS 8.5 on Exchange 2013 starts the worker (the -h path names the pool too).
REAL_LINE = (
    r'c:\windows\system32\inetsrv\w3wp.exe -ap "MSExchangeOWAAppPool" -v "v4.0" '
    r'-c "C:\Program Files\Microsoft\Exchange Server\V15\bin\GenericAppPoolConfigWithGCServerEnabledFalse.config" '
    r'-a \\.\pipe\iisipm5b1c7a3e-2f46-4c1d-9d5e-3f1f2e8b7c11 '
    r'-h "C:\inetpub\temp\apppools\MSExchangeOWAAppPool\MSExchangeOWAAppPool.config" -w "" -m 0 -t 20 -ta 0'
)


def test_real_command_line_splits_like_windows():
    args = split_command_line(REAL_LINE)
    assert args[0] == r"c:\windows\system32\inetsrv\w3wp.exe"
    assert args[1:5] == ["-ap", OWA, "-v", "v4.0"]
    assert r"\\.\pipe\iisipm5b1c7a3e-2f46-4c1d-9d5e-3f1f2e8b7c11" in args
    assert args[args.index("-w") + 1] == ""
    assert app_pool_of(REAL_LINE) == OWA


@pytest.mark.parametrize(
    "line, expected",
    [
        ('"C:\\Windows\\System32\\inetsrv\\w3wp.exe" -ap "My Pool" -v "v4.0"', "My Pool"),
        ("w3wp.exe -ap MSExchangeOWAAppPool -v v4.0", OWA),  # unquoted
        ('w3wp.exe -AP "MSExchangeOWAAppPool"', OWA),  # switch case
        ('w3wp.exe\t-ap\t"MSExchangeOWAAppPool"\r\n', OWA),  # tabs and line ends
        ('w3wp.exe -ap " MSExchangeOWAAppPool "', OWA),  # blanks inside the quotes
        ('w3wp.exe -ap "Pool \\"quoted\\""', 'Pool "quoted"'),  # escaped quotes
        ('w3wp.exe -ap "Pool ""quoted"""', 'Pool "quoted"'),  # doubled quotes inside quotes
        ('w3wp.exe -ap "C:\\dir\\\\" -v x', "C:\\dir\\"),  # 2n backslashes before a closing quote
        ("w3wp.exe -ap", None),  # switch without a value
        ("w3wp.exe -v v4.0", None),
        ("w3wp.exe -apx MSExchangeOWAAppPool", None),
        ("", None),
        (None, None),
    ],
)
def test_app_pool_of(line, expected):
    assert app_pool_of(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        'w3wp.exe -ap "MSExchangeOWACalendarAppPool" -h "C:\\inetpub\\temp\\apppools\\MSExchangeOWAAppPool.config"',
        'w3wp.exe -ap "MSExchangeOWAAppPoolX"',
        'w3wp.exe -ap "XMSExchangeOWAAppPool"',
        'w3wp.exe -h "-ap MSExchangeOWAAppPool" -ap "DefaultAppPool"',
        '"C:\\MSExchangeOWAAppPool\\w3wp.exe" -ap "DefaultAppPool"',
        'w3wp.exe -ap "\u200eMSExchangeOWAAppPool"',  # an invisible mark makes it another name
    ],
)
def test_other_pools_never_match(line):
    assert not serves_pool(line, OWA)


def test_pool_names_compare_case_insensitively():
    assert serves_pool('w3wp.exe -ap "msexchangeowaapppool"', OWA)
    assert serves_pool(REAL_LINE, "msexchangeowaapppool")


def test_newest_worker_of_an_overlapped_recycle():
    now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    rows = [
        {"CommandLine": REAL_LINE, "CreationDate": now - dt.timedelta(hours=3)},
        {"CommandLine": 'w3wp.exe -ap "MSExchangeOWAAppPool"', "CreationDate": now - dt.timedelta(minutes=2)},
        {"CommandLine": 'w3wp.exe -ap "MSExchangeOWACalendarAppPool"', "CreationDate": now},
        {"CommandLine": None, "CreationDate": now},
        {"CreationDate": now},
    ]
    workers = pool_workers(rows, OWA)
    assert workers.count == 2 and workers.newest_start == now - dt.timedelta(minutes=2)


def test_worker_without_creation_date_still_counts():
    workers = pool_workers([{"CommandLine": REAL_LINE, "CreationDate": None}], OWA)
    assert workers.count == 1 and workers.newest_start is None
    assert pool_workers([], OWA).count == 0


_PLAIN_ARG = st.text(alphabet=st.characters(blacklist_characters='"\\', blacklist_categories=("Cs", "Cc", "Zs", "Zl",
                                                                                               "Zp")), min_size=1)
_ANY_ARG = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


def _quote(arg: str) -> str:
    """How the MSVC runtime expects an argument to be written (subprocess.list2cmdline's rules)."""
    import subprocess

    return subprocess.list2cmdline([arg])


@given(st.lists(_ANY_ARG, max_size=6))
def test_round_trip_with_windows_quoting(args):
    # Windows' own blank set is space and tab; list2cmdline quotes only those.
    args = [a for a in args if not any(ch.isspace() and ch not in " \t" for ch in a)]
    line = "w3wp.exe " + " ".join(_quote(a) for a in args)
    assert split_command_line(line) == ["w3wp.exe", *args]


@given(_PLAIN_ARG, st.lists(_ANY_ARG, max_size=4))
def test_finds_the_pool_after_any_other_arguments(pool, before):
    assume(all(a.lower() != "-ap" and not any(ch.isspace() and ch not in " \t" for ch in a) for a in before))
    line = " ".join(["w3wp.exe", *(_quote(a) for a in before), "-ap", _quote(pool)])
    assert app_pool_of(line) == pool


@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text):
    split_command_line(text)
    app_pool_of(text)
