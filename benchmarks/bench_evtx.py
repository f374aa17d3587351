"""Finding the MSExchange OWA events in a 20 MB Application.evtx (design targets: cold under 2 s,
100 new records under 50 ms), beside the Rust ``evtx`` parser as the anchor.

    .venv/bin/python benchmarks/bench_evtx.py [--records 40000] [--owa 12] [--append 100] [--repeat 5]

Generates a Windows-shaped Application log with tests/evtx_writer.py (about 40,000 records from
several providers, a dozen MSExchange OWA events), then measures:
- cold: ``scan_file`` with no cursor (file in the page cache);
- incremental: 100 records appended in place (one of them an OWA event), ``scan_file`` from the
  cursor of the cold scan;
- unchanged: the same file again from the new cursor;
- python-evtx rendering every record, extrapolated from a sample (what the prefilter avoids);
- the Rust ``evtx`` package (pip install evtx) parsing the whole file to XML, which also
  cross-checks the generated file: same record count, same OWA record ids as the scanner.
The Rust package is only a benchmark anchor, never a runtime dependency.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from Evtx.Evtx import Evtx  # noqa: E402

from collectors.sources.evtx import scan_file
from tests.evtx_writer import OWA_PROVIDER, application_log, owa_records  # noqa: E402


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def fmt(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:8.1f} ms   min {min(times) * 1000:8.1f} ms"


def python_evtx_rate(path: Path, sample: int) -> float:
    """Records per second when python-evtx renders every record (the naive way)."""
    started, n = time.perf_counter(), 0
    with Evtx(str(path)) as log:
        for record in log.records():
            record.xml()
            n += 1
            if n >= sample:
                break
    return n / (time.perf_counter() - started)


def rust_anchor(path: Path, repeat: int, expected_records: int, owa_ids: list[int]) -> None:
    try:
        import evtx  # the Rust-backed PyPI package
    except ImportError:
        print("rust evtx: not installed; for the anchor run:  .venv/bin/pip install evtx")
        return
    times, records = timed(lambda: list(evtx.PyEvtxParser(str(path)).records()), repeat)
    print(f"rust evtx, all records to XML:   {fmt(times)}   ({len(records)} records)")
    found = sorted(int(re.search(r"<EventRecordID>(\d+)<", r["data"]).group(1)) for r in records
                   if f'<Provider Name="{OWA_PROVIDER}"' in r["data"])
    assert len(records) == expected_records, f"rust evtx read {len(records)} records, expected {expected_records}"
    assert found == owa_ids, "rust evtx and the scanner disagree on the OWA events"
    print("rust evtx cross-check: record count and OWA record ids agree with the scanner")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--owa", type=int, default=12)
    parser.add_argument("--append", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sample", type=int, default=1000, help="records python-evtx renders for its rate")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Application.evtx"
        started = time.perf_counter()
        writer = application_log(args.records, args.owa, seed=7)
        writer.write(path)
        base = path.read_bytes()
        print(f"generated {path.stat().st_size / 1e6:.1f} MB, {len(writer.records)} records in "
              f"{len(writer.slots)} chunks, {len(owa_records(writer))} MSExchange OWA events "
              f"({time.perf_counter() - started:.1f} s)")

        cold_times, cold = timed(lambda: scan_file(path), args.repeat)
        assert [e.record_number for e in cold.events] == [r.number for r in owa_records(writer)]
        s = cold.stats
        print(f"cold scan:                       {fmt(cold_times)}   ({s.records_seen} records walked, "
              f"{s.records_rendered} rendered, {len(cold.events)} events)")

        application_log(args.append, 1, seed=8, writer=writer)
        writer.write(path, append=True)
        appended = path.read_bytes()
        incremental_times = []
        for _ in range(args.repeat):
            path.write_bytes(base)
            cursor = scan_file(path).cursor
            path.write_bytes(appended)
            started = time.perf_counter()
            incremental = scan_file(path, cursor=cursor)
            incremental_times.append(time.perf_counter() - started)
        s = incremental.stats
        assert len(incremental.events) == 1 and incremental.reset is None
        print(f"incremental (+{args.append} records):      {fmt(incremental_times)}   ({s.chunks_skipped} chunks "
              f"skipped, {s.records_seen} records walked, {s.records_rendered} rendered, "
              f"{len(incremental.events)} event)")

        unchanged_times, _ = timed(lambda: scan_file(path, cursor=incremental.cursor), args.repeat)
        print(f"unchanged file:                  {fmt(unchanged_times)}")

        rate = python_evtx_rate(path, args.sample)
        print(f"python-evtx rendering every record: {rate:,.0f} records/s, so about "
              f"{len(writer.records) / rate:,.0f} s for this file")

        owa_ids = sorted(r.xml_record_id for r in owa_records(writer))
        rust_anchor(path, args.repeat, len(writer.records), owa_ids)


if __name__ == "__main__":
    main()
