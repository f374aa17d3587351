"""Reading exported Windows event logs (.evtx) without Windows, never trusting them.

A pure library: no Prometheus, no scheduling. What reads what: the project walks files, chunks and
records itself (slack space, damage, cursors); python-evtx, the product's parser, renders the records
written with templates (a server's own logs); the project's BinXML decoder renders those python-evtx
cannot (written without templates: exports, Windows Event Collector's ForwardedEvents) and any
templated record python-evtx fails on. One job per module:
- ``layout``: file, chunk and record headers; the walk that finds real records (not slack); the
  file reader (positioned reads, a chunk only up to its end-of-data mark when that is enough);
- ``render``: which renderer reads a record, decided on its bytes; the fallback to the other
  (the ``evtx`` command asks the decoder first, the collector python-evtx);
- ``pyevtx``: python-evtx rendering a templated record, with the project's work-arounds;
- ``binxml``: the decoder: a record's BinXML (templates, template-less and forwarded records) as a tree;
- ``event``: the System fields and data of a rendered record, TimeCreated to the 100 ns tick;
- ``prefilter``: which records can hold a provider's events, decided on bytes;
- ``scan``: one file, incrementally from a cursor; ``folder``: a folder of files.
"""

from collectors.sources.evtx.event import MAX_DATA_CHARS, MAX_DATA_ITEMS, ProviderEvent
from collectors.sources.evtx.folder import FolderScan, scan_folder
from collectors.sources.evtx.layout import (
    CHUNK_HEADER_SIZE,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
)
from collectors.sources.evtx.scan import (
    DEFAULT_PROVIDER,
    TIME_BUDGET_ERROR,
    FileCursor,
    ScanResult,
    ScanStats,
    scan_file,
)

__all__ = [
    "CHUNK_HEADER_SIZE", "CHUNK_SIZE", "DEFAULT_PROVIDER", "FILE_HEADER_SIZE", "MAX_DATA_CHARS", "MAX_DATA_ITEMS",
    "TIME_BUDGET_ERROR", "FileCursor", "FolderScan", "ProviderEvent", "ScanResult", "ScanStats", "scan_file",
    "scan_folder",
]
