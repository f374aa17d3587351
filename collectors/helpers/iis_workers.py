"""Which IIS worker process (w3wp.exe) serves which application pool, from its command line.

IIS starts every worker as ``w3wp.exe -ap "PoolName" -v "v4.0" ... -h "...\\PoolName\\PoolName.config"``.
The pool name also appears inside other arguments (the ``-h`` path) and other pools share its prefix
(MSExchangeOWACalendarAppPool), so a substring test is wrong: the line is split the way Windows
splits it and the argument after ``-ap`` is compared whole.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

# Windows limits a command line to 32,767 characters; anything longer is not a real one.
MAX_COMMAND_LINE_CHARS = 32_767
_APP_POOL_SWITCH = "-ap"


def split_command_line(text: str) -> list[str]:
    """Split a command line into arguments as CommandLineToArgvW / the MSVC runtime do.

    The program name ends at the closing quote or the first blank, without escapes. In the other
    arguments, blanks outside quotes separate, ``"`` toggles quoting, ``""`` inside quotes is a
    literal quote, and backslashes are literal unless they precede a quote (2n backslashes + ``"``:
    n backslashes and a quote that toggles; 2n+1: n backslashes and a literal quote).
    """
    text = text[:MAX_COMMAND_LINE_CHARS]
    n = len(text)
    i = _skip_blanks(text, 0)
    if i >= n:
        return []
    args: list[str] = []
    if text[i] == '"':
        end = text.find('"', i + 1)
        end = n if end < 0 else end
        args.append(text[i + 1 : end])
        i = end + 1
    else:
        end = i
        while end < n and not text[end].isspace():
            end += 1
        args.append(text[i:end])
        i = end
    while True:
        i = _skip_blanks(text, i)
        if i >= n:
            return args
        arg, i = _one_argument(text, i)
        args.append(arg)


def _skip_blanks(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _one_argument(text: str, i: int) -> tuple[str, int]:
    n = len(text)
    out: list[str] = []
    quoted = False
    while i < n:
        char = text[i]
        if char.isspace() and not quoted:
            break
        if char == "\\":
            run = i
            while run < n and text[run] == "\\":
                run += 1
            count = run - i
            if run < n and text[run] == '"':
                out.append("\\" * (count // 2))
                if count % 2:
                    out.append('"')
                    run += 1  # the escaped quote is consumed; an unescaped one is handled next
            else:
                out.append("\\" * count)
            i = run
            continue
        if char == '"':
            if quoted and i + 1 < n and text[i + 1] == '"':
                out.append('"')
                i += 2
                continue
            quoted = not quoted
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out), i


def app_pool_of(command_line: str | None) -> str | None:
    """The application pool a w3wp.exe command line names after ``-ap`` (case-insensitive), else None."""
    if not command_line:
        return None
    args = split_command_line(command_line)
    for position, arg in enumerate(args[1:], start=1):
        if arg.lower() == _APP_POOL_SWITCH and position + 1 < len(args):
            return args[position + 1].strip()
    return None


def serves_pool(command_line: str | None, pool_name: str) -> bool:
    """True when the worker's ``-ap`` argument is exactly this pool (pool names are case-insensitive in IIS)."""
    named = app_pool_of(command_line)
    return named is not None and named.casefold() == pool_name.strip().casefold()


@dataclass(frozen=True)
class PoolWorkers:
    """The worker processes of one pool: how many, and when the newest one started."""

    count: int
    newest_start: dt.datetime | None  # None when no worker, or none reported its CreationDate


def pool_workers(processes: Iterable[dict[str, Any]], pool_name: str) -> PoolWorkers:
    """Select the workers of ``pool_name`` among Win32_Process rows (plain dicts).

    During an overlapped recycle the old and the new worker run side by side; the newest start
    is the one that anchors what follows (Event 112 after the new worker's first sign-in).
    """
    starts: list[dt.datetime] = []
    count = 0
    for process in processes:
        if not serves_pool(process.get("CommandLine"), pool_name):
            continue
        count += 1
        started = process.get("CreationDate")
        if isinstance(started, dt.datetime):
            starts.append(started)
    return PoolWorkers(count, max(starts, default=None))
