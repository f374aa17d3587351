"""Which renderer reads a record: python-evtx (the product's parser) or the project's BinXML decoder.

Decided from the record's bytes, before rendering: a record whose fragment starts with a template
instance is rendered by python-evtx, which is how Windows writes its own logs; a record written
without templates (exports, Windows Event Collector's ForwardedEvents) goes to the decoder, since
outside a template definition an element start carries no dependency identifier and python-evtx
always reads one (MS-EVEN6 2.2.12; libevtx, "Element start"). Where python-evtx raises on a record
it should have rendered (damage it does not survive, a template that names itself, XML it writes
unescaped), or is refused because it would hang, the decoder tries the record and the fallback is
counted; only when the decoder fails too is the record unreadable.
"""

from __future__ import annotations

import logging

from collectors.sources.evtx import pyevtx
from collectors.sources.evtx.binxml import ChunkDecoder, Element
from collectors.sources.evtx.prefilter import top_level_template

log = logging.getLogger(__name__)


class ChunkRenderer:
    """Renders the records of one chunk; each renderer is built on first use, once per chunk.

    ``decoder_first`` (the ``evtx`` command, which renders every record of a file) asks the
    decoder first, about 25 times faster than python-evtx on a whole log, and python-evtx only for
    a templated record the decoder fails on; the collector asks python-evtx first. Both give the
    same events on every shared real file and on generated files of every shape (the tests).
    """

    def __init__(self, buf: bytes, use_python_evtx: bool = True, decoder_first: bool = False):
        self.buf = buf
        self.use_python_evtx = use_python_evtx
        self.decoder_first = decoder_first
        self.fallbacks = 0  # records the first renderer could not read, read by the other
        self._chunk: pyevtx.Chunk | None = None
        self._decoder: ChunkDecoder | None = None

    def record(self, offset: int, size: int) -> Element:
        """The root element of the record at ``offset``; raises when neither renderer can read it."""
        templated = self.use_python_evtx and top_level_template(self.buf, offset + 0x18)
        if self.decoder_first and templated:
            try:
                return self._decoded(offset, size)
            except Exception as exc:  # damaged BinXML: struct, index, decoding or the decoder's own errors
                self.fallbacks += 1
                log.debug("record at chunk offset 0x%x: the decoder failed (%s: %.200s); python-evtx tries it",
                          offset, type(exc).__name__, exc)
                return self._python_evtx(offset)
        if templated:
            try:
                return self._python_evtx(offset)
            except Exception as exc:  # python-evtx on a damaged or unusual record: any type is possible
                self.fallbacks += 1
                log.debug("record at chunk offset 0x%x: python-evtx failed (%s: %.200s); decoding it instead",
                          offset, type(exc).__name__, exc)
        return self._decoded(offset, size)

    def _python_evtx(self, offset: int) -> Element:
        if self._chunk is None:
            self._chunk = pyevtx.Chunk(self.buf)
        return pyevtx.render(self._chunk, offset)

    def _decoded(self, offset: int, size: int) -> Element:
        if self._decoder is None:
            self._decoder = ChunkDecoder(self.buf)
        return self._decoder.record(offset, size)
