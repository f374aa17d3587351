"""Which records can hold a provider's events, decided on bytes, before any decoding.

Decoding costs far more than walking record headers, so a record is decoded only if its bytes can
produce the provider's name: the name (UTF-16LE or 8-bit, any case) is in the record itself, or in a
template definition of the chunk that the record references by offset. Windows keeps the literal
``<Provider Name=...>`` in one template definition per chunk, so a chunk without the name holds no
candidate at all.
"""

from __future__ import annotations

import re
import struct

from collectors.sources.evtx.layout import (
    CHUNK_HEADER_SIZE,
    CHUNK_SIZE,
    WalkCounts,
    walk_records,
)


class Needle:
    """The provider name as it can appear in bytes: UTF-16LE or 8-bit, compared lower-cased.

    bytes.lower() only folds ASCII letters; applied to both sides it keeps every true match (the
    decoded name is compared exactly, case-insensitively, afterwards). The UTF-16 form is searched
    with a compiled pattern and without its last NUL byte (implied by a true match): ``in`` with a
    needle of alternating NULs steps one byte at a time through a mostly zero chunk, 5 to 10 times
    slower (benchmarks/bench_evtx.py, docs/performance.md).
    """

    def __init__(self, provider: str):
        utf16 = provider.encode("utf-16-le").lower().rstrip(b"\0")
        latin = provider.encode("latin-1", "ignore").lower()
        self.forms = tuple({utf16, latin} - {b""})
        self._searches = tuple(re.compile(re.escape(form)).search if b"\0" in form else _finder(form)
                               for form in self.forms if form)

        # Both forms with their NUL bytes dropped: "MSExchange OWA" gives one form, not two.
        self._squeezed = tuple({form.replace(b"\0", b"") for form in self.forms} - {b""})
        self._squeeze_table = _squeeze_table(set(b"".join(self._squeezed)))

    def in_(self, lowered: bytes) -> bool:
        return any(search(lowered) for search in self._searches)

    def may_be_in(self, data: bytes) -> bool:
        """False when ``data`` (raw bytes, not lower-cased) cannot hold the name; True can be wrong.

        One pass lower-cases ASCII and drops every NUL byte, so the UTF-16 form becomes the 8-bit
        one and one search finds either, in half the bytes: a chunk without the name (most of a
        log, every chunk of most exports) is ruled out faster than by ``in_`` on its lower-cased
        bytes. Every match of ``in_`` survives the dropping; the bytes a dropped NUL joins can give
        a false match, which only sends the chunk to ``in_``. The same pass turns every byte the
        name does not hold into one filler byte (``_squeeze_table``), which the search skips.
        """
        squeezed = data.translate(self._squeeze_table, b"\0")
        for form in self._squeezed:
            if form in squeezed:
                return True
        return False


def _finder(form: bytes):
    """Whether ``form`` is in the bytes given (not ``form.__contains__``, which asks the reverse)."""
    return lambda lowered: form in lowered


_ASCII_LOWER = bytes.maketrans(bytes(range(0x41, 0x5B)), bytes(range(0x61, 0x7B)))  # what bytes.lower() does


def _squeeze_table(alphabet: set[int]) -> bytes:
    """``_ASCII_LOWER``, but every byte whose lower-cased value is not in ``alphabet`` (the bytes of
    the squeezed forms) becomes one filler byte outside it.

    A byte-for-byte map keeps every occurrence of a form (its bytes map to themselves) and adds
    none (the filler is in no form). Why: after a mismatch the search (CPython's fastsearch) jumps a
    whole needle length when the next byte is not in the needle, and binary data, digits and
    letters the name lacks then all are that byte.
    """
    filler = next((b for b in range(1, 256) if b not in alphabet), None)
    if filler is None:
        return _ASCII_LOWER
    return bytes(low if low in alphabet else filler for low in _ASCII_LOWER)


def matching_template_refs(buf: bytes, lowered: bytes, needle: Needle, free: int) -> tuple[bytes, ...]:
    """The offsets (as the 4 bytes a referencing record carries) of the chunk's template definitions
    whose body holds the provider name.

    Definitions are found three ways, so none is missed: Windows' inline layout (a 0x0C instance
    token whose offset points just past itself), the template table, and the top-level template
    offset of every record. A record using a definition always holds its offset, top-level or in a
    nested EventData value.
    """
    offsets: set[int] = set()
    for m in re.finditer(b"\x0c", buf):
        x = m.start()
        if x + 10 <= CHUNK_SIZE - 0x18 and struct.unpack_from("<I", buf, x + 6)[0] == x + 10:
            offsets.add(x + 10)
    for i in range(32):
        offsets.add(struct.unpack_from("<I", buf, 0x180 + 4 * i)[0])
    for offset, _size, _number in walk_records(buf, free, WalkCounts()):
        offsets.add(top_level_template(buf, offset + 0x18))
    refs = []
    for t in offsets:
        if CHUNK_HEADER_SIZE <= t <= CHUNK_SIZE - 0x18:
            length = struct.unpack_from("<I", buf, t + 0x14)[0]
            if needle.in_(lowered[t + 0x18:min(CHUNK_SIZE, t + 0x18 + length)]):
                refs.append(struct.pack("<I", t))
    return tuple(refs)


def top_level_template(buf: bytes, at: int) -> int:
    """The template offset of a record's fragment (0 if it has none: a template-less record)."""
    if at < CHUNK_SIZE and buf[at] & 0x0F == 0x0F:
        at += 4
    if at + 10 > CHUNK_SIZE or buf[at] & 0x0F != 0x0C:
        return 0
    return struct.unpack_from("<I", buf, at + 6)[0]
