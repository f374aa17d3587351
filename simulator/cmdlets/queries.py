"""Tiny parsers for the query languages cmdlets accept: event-log XPath and WQL filters.

Only the subsets the exporter (and a careful operator) use are understood; anything else is reported
as an invalid query rather than silently matching everything.

XPath, e.g. ``*[System[Provider[@Name='MSExchange OWA'] and (EventID=112) and (EventRecordID > 5)]]``:
  and/or/parentheses over ``Provider[@Name='X']``, ``EventID``, ``EventRecordID``, ``Level``, ``Task``
  compared with = != < <= > >=, ``TimeCreated[@SystemTime >= 'ISO']`` and
  ``TimeCreated[timediff(@SystemTime) <= ms]``.
WQL, e.g. ``Name='w3wp.exe' AND CommandLine LIKE '%MSExchangeOWAAppPool%'``:
  and/or/parentheses over ``Property op literal`` with = <> != < <= > >= LIKE.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import operator
import re
from collections.abc import Callable
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^']*'|\"[^\"]*\")|(?P<num>\d+)|(?P<op><=|>=|!=|<>|=|<|>)"
    r"|(?P<punct>[\[\]()*@])|(?P<word>[A-Za-z_][A-Za-z0-9_.%:-]*(?:\(@SystemTime\))?))"
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<>": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class QueryError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    pos, out = 0, []
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"unexpected text at {text[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok_kind, tok = self.peek()
        if (value is not None and tok.lower() != value.lower()) or (kind is not None and tok_kind != kind):
            raise QueryError(f"expected {value or kind!r}, found {tok or 'end of query'!r}")
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        return self.peek()[1].lower() == value.lower()

    def done(self) -> None:
        if self.peek()[0] != "end":
            raise QueryError(f"unexpected {self.peek()[1]!r}")

    def boolean(self, atom: Callable[[], Callable]) -> Callable:
        """or/and/parentheses around ``atom``."""

        def unary() -> Callable:
            if self.at("("):
                self.take("(")
                inner = disjunction()
                self.take(")")
                return inner
            if self.at("not"):
                self.take("not")
                inner = unary()
                return lambda r: not inner(r)
            return atom()

        def conjunction() -> Callable:
            parts = [unary()]
            while self.at("and"):
                self.take("and")
                parts.append(unary())
            return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

        def disjunction() -> Callable:
            parts = [conjunction()]
            while self.at("or"):
                self.take("or")
                parts.append(conjunction())
            return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

        return disjunction()


def _literal(parser: _Parser) -> Any:
    kind, tok = parser.peek()
    if kind == "str":
        parser.take()
        return tok[1:-1]
    if kind == "num":
        parser.take()
        return int(tok)
    raise QueryError(f"expected a number or a quoted string, found {tok or 'end of query'!r}")


def _iso(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"invalid SystemTime {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def event_xpath(text: str, now: dt.datetime) -> Callable[[dict], bool]:
    """A predicate over ``{"provider", "id", "record_id", "level", "task", "time"}`` dicts."""
    parser = _Parser(text)
    if parser.at("*") or parser.at("Event"):
        parser.take()
    else:
        raise QueryError("a query starts with '*' or 'Event'")
    if parser.peek()[0] == "end":
        return lambda r: True
    parser.take("[")
    parser.take("System")
    parser.take("[")

    def atom() -> Callable[[dict], bool]:
        name = parser.take(kind="word")
        lowered = name.lower()
        if lowered == "provider":
            parser.take("[")
            parser.take("@")
            parser.take("Name")
            op = _OPS[parser.take(kind="op")]
            value = str(_literal(parser)).lower()
            parser.take("]")
            return lambda r: op(r["provider"].lower(), value)
        if lowered in ("eventid", "eventrecordid", "level", "task"):
            key = {"eventid": "id", "eventrecordid": "record_id", "level": "level", "task": "task"}[lowered]
            op = _OPS[parser.take(kind="op")]
            value = _literal(parser)
            if not isinstance(value, int):
                raise QueryError(f"{name} compares with a number")
            return lambda r: op(r[key], value)
        if lowered == "timecreated":
            parser.take("[")
            if parser.at("@"):
                parser.take("@")
                parser.take("SystemTime")
                op = _OPS[parser.take(kind="op")]
                when = _iso(str(_literal(parser)))
                parser.take("]")
                return lambda r: op(r["time"], when)
            if parser.at("timediff(@SystemTime)"):
                parser.take()
                op = _OPS[parser.take(kind="op")]
                millis = _literal(parser)
                parser.take("]")
                return lambda r: op((now - r["time"]).total_seconds() * 1000, millis)
            raise QueryError("TimeCreated supports [@SystemTime op 'ISO'] and [timediff(@SystemTime) op ms]")
        raise QueryError(f"unsupported element {name!r}")

    predicate = parser.boolean(atom)
    parser.take("]")
    parser.take("]")
    parser.done()
    return predicate


def wql_filter(text: str, known: set[str]) -> Callable[[dict], bool]:
    """A predicate over property dicts (keys as in ``known``, compared case-insensitively)."""
    parser = _Parser(text)
    lookup = {k.lower(): k for k in known}

    def atom() -> Callable[[dict], bool]:
        name = parser.take(kind="word")
        prop = lookup.get(name.lower())
        if prop is None:
            raise QueryError(f"unknown property {name!r}")
        if parser.at("like"):
            parser.take()
            pattern = str(_literal(parser)).lower().replace("%", "*").replace("_", "?")
            return lambda r: r.get(prop) is not None and fnmatch.fnmatchcase(str(r[prop]).lower(), pattern)
        op = _OPS[parser.take(kind="op")]
        value = _literal(parser)

        def compare(r: dict) -> bool:
            actual = r.get(prop)
            if actual is None:
                return False
            if isinstance(value, str):
                return op(str(actual).lower(), value.lower())
            return op(actual, value)

        return compare

    predicate = parser.boolean(atom)
    parser.done()
    return predicate


def wql_select(query: str) -> tuple[str, str | None]:
    """``SELECT * FROM Class [WHERE filter]`` to (class, filter)."""
    match = re.match(r"^\s*select\s+.+?\s+from\s+(\w+)(?:\s+where\s+(.+))?\s*$", query, re.IGNORECASE | re.DOTALL)
    if not match:
        raise QueryError("expected SELECT ... FROM <class> [WHERE <filter>]")
    return match.group(1), match.group(2)
