"""Finding the MSExchange OWA events in a 20 MB Application.evtx (design targets: cold under 2 s,
100 new records under 50 ms), beside the Rust ``evtx`` parser as the anchor.

    .venv/bin/python benchmarks/bench_evtx.py [--records 40000] [--owa 12] [--append 100] [--repeat 5]
                                              [--clock wall|cpu] [--real DIR] [--rounds 40] [--real-only]
                                              [--real-every-record] [--only NAME ...]

Generates a Windows-shaped Application log with tests/evtx_writer.py (about 40,000 records from
several providers, a dozen MSExchange OWA events), then measures:
- cold: ``scan_file`` with no cursor (file in the page cache);
- incremental: 100 records appended in place (one of them an OWA event), ``scan_file`` from the
  cursor of the cold scan;
- unchanged: the same file again from the new cursor;
- every record rendered (``scan_file(provider=None)``): python-evtx for templated records, the
  decoder for the rest, as the collector renders (``--every-repeat`` runs, default 1); the same
  with the decoder first (``decoder_first=True``, what ``lync-owa-exporter evtx FILE`` does), and
  the command itself as a process; and the decoder alone (``use_python_evtx=False``);
- stock python-evtx rendering every record, extrapolated from a sample (what the prefilter avoids);
- the Rust ``evtx`` package (in the test extra) parsing the whole file to XML, which also
  cross-checks the generated file: same record count, same OWA record ids as the scanner;
- with --real DIR (default: the shared folder of real event logs beside the project, when present):
  per real file, the MSExchange OWA scan beside the Rust parser reading the same file, each the
  fastest of --rounds loops taken in turns (``--real-only``: only these; ``--real-every-record``:
  also every record rendered each way; ``--only NAME``: only the files whose name contains NAME,
  to give a close call more rounds).
The Rust package is only a benchmark anchor and the tests' reference, never a runtime dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from Evtx.Evtx import Evtx  # noqa: E402

from collectors.sources.evtx import scan_file  # noqa: E402
from tests.evtx_writer import OWA_PROVIDER, application_log, owa_records  # noqa: E402

clock = time.perf_counter  # --clock cpu: time.process_time, the CPU this process used (all its threads)


def timed(fn, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        started = clock()
        result = fn()
        times.append(clock() - started)
    return times, result


def fmt(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:8.1f} ms   min {min(times) * 1000:8.1f} ms"


def python_evtx_rate(path: Path, sample: int) -> float:
    """Records per second when python-evtx renders every record (the naive way)."""
    started, n = clock(), 0
    with Evtx(str(path)) as log:
        for record in log.records():
            record.xml()
            n += 1
            if n >= sample:
                break
    return n / (clock() - started)


def command_run(path: Path) -> float:
    """Wall-clock seconds of ``lync-owa-exporter evtx FILE --json`` as a process (start-up and JSON
    output included), its output checked and thrown away."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "exporter.cli", "evtx", "--json", str(path)],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, check=True)
    elapsed = time.perf_counter() - started
    assert json.loads(done.stdout)["files"][0]["error"] is None
    return elapsed


def rust_all(path: Path) -> list:
    """Every record the Rust parser reads (it raises on a damaged record and carries on)."""
    import evtx  # the Rust-backed PyPI package

    out, records = [], evtx.PyEvtxParser(str(path)).records()
    while True:
        try:
            out.append(next(records))
        except StopIteration:
            return out
        except RuntimeError:
            continue


def rust_anchor(path: Path, repeat: int, expected_records: int, owa_ids: list[int]) -> None:
    try:
        import evtx  # noqa: F401
    except ImportError:
        print("rust evtx: not installed; for the anchor run:  .venv/bin/pip install -e '.[test]'")
        return
    times, records = timed(lambda: rust_all(path), repeat)
    print(f"rust evtx, all records to XML:   {fmt(times)}   ({len(records)} records)")
    found = sorted(int(re.search(r"<EventRecordID>(\d+)<", r["data"]).group(1)) for r in records
                   if f'<Provider Name="{OWA_PROVIDER}"' in r["data"])
    assert len(records) == expected_records, f"rust evtx read {len(records)} records, expected {expected_records}"
    assert found == owa_ids, "rust evtx and the scanner disagree on the OWA events"
    print("rust evtx cross-check: record count and OWA record ids agree with the scanner")


def per_call(fn, repeat: int) -> float:
    """Seconds per call: the median of ``repeat`` loops of at least 50 ms each (tiny files take
    tens of microseconds, below one timer reading's noise)."""
    calls = _calls_per_loop(fn, 0.05)
    loops = []
    for _ in range(repeat):
        started = clock()
        for _ in range(calls):
            fn()
        loops.append((clock() - started) / calls)
    return statistics.median(loops)


def _calls_per_loop(fn, seconds: float) -> int:
    started, calls = clock(), 0
    while clock() - started < seconds:
        fn()
        calls += 1
    return calls


def min_per_call(fns: list, rounds: int, loop_seconds: float = 0.005) -> list[float]:
    """Seconds per call of each function: the fastest of ``rounds`` loops of about ``loop_seconds``,
    the functions' loops taking turns, so a busy spell of the machine slows all of them alike and
    the minimum of each is its cost undisturbed."""
    calls = [_calls_per_loop(fn, loop_seconds) or 1 for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            started = clock()
            for _ in range(calls[i]):
                fn()
            best[i] = min(best[i], (clock() - started) / calls[i])
    return best


def real_files(folder: Path, repeat: int, rounds: int, every_record: bool, only: list[str] | None = None) -> None:
    """The OWA-only scan beside the Rust parser on each real file (both read from the page cache)."""
    try:
        import evtx  # noqa: F401
    except ImportError:
        return
    clock_name = "CPU time" if clock is time.process_time else "wall clock"
    print(f"real files in {folder.name}/: OWA-only scan vs Rust evtx reading every record, per call ({clock_name}), "
          f"min of {rounds} alternating loops of 5 ms; load average {os.getloadavg()[0]:.1f} at the start")
    slower = []
    for path in sorted(folder.glob("*.evtx")):
        if only and not any(name in path.name for name in only):
            continue
        ours, rust = min_per_call([lambda: scan_file(path), lambda: rust_all(path)], rounds)
        line = (f"  {path.name:36} OWA scan {ours * 1e6:9.1f} us  rust {rust * 1e6:9.1f} us  "
                f"OWA scan {rust / ours:5.2f}x as fast as rust")
        if every_record:
            every = timed(lambda: scan_file(path, provider=None), 1)[0][0]
            command = timed(lambda: scan_file(path, provider=None, decoder_first=True), 1)[0][0]
            decoded = per_call(lambda: scan_file(path, provider=None, use_python_evtx=False), repeat)
            line += (f"  every record: python-evtx first {every * 1000:8.1f} ms  decoder first (the command) "
                     f"{command * 1000:8.1f} ms  decoder only {decoded * 1000:8.1f} ms")
        print(line)
        if ours > rust:
            slower.append(path.name)
    print("OWA scan slower than rust on: " + (", ".join(slower) if slower else "no file")
          + f"; load average {os.getloadavg()[0]:.1f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--owa", type=int, default=12)
    parser.add_argument("--append", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--every-repeat", type=int, default=1,
                        help="runs of rendering every record with python-evtx (about a minute each)")
    parser.add_argument("--sample", type=int, default=1000, help="records python-evtx renders for its rate")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: CPU time of this process (the Rust parser's threads included), for a "
                             "machine busy with other work, where wall-clock figures measure the others")
    parser.add_argument("--rounds", type=int, default=40,
                        help="alternating loops per real file for the OWA scan and the Rust parser (the min counts)")
    parser.add_argument("--real-only", action="store_true", help="only the real files, not the generated log")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="only the real files whose name contains NAME (repeatable): more rounds on a few files")
    parser.add_argument("--real-every-record", action="store_true",
                        help="also render every record of each real file (tens of seconds with python-evtx)")
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "evtx",
                        help="a folder of real .evtx files to compare with the Rust parser (skipped if absent)")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    if not args.real_only:
        generated_log(args)
    if args.real.is_dir():
        real_files(args.real, args.repeat, args.rounds, args.real_every_record, args.only)


def generated_log(args: argparse.Namespace) -> None:
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
            started = clock()
            incremental = scan_file(path, cursor=cursor)
            incremental_times.append(clock() - started)
        s = incremental.stats
        assert len(incremental.events) == 1 and incremental.reset is None
        print(f"incremental (+{args.append} records):      {fmt(incremental_times)}   ({s.chunks_skipped} chunks "
              f"skipped, {s.records_seen} records walked, {s.records_rendered} rendered, "
              f"{len(incremental.events)} event)")

        unchanged_times, _ = timed(lambda: scan_file(path, cursor=incremental.cursor), args.repeat)
        print(f"unchanged file:                  {fmt(unchanged_times)}")

        every_times, every = timed(lambda: scan_file(path, provider=None), args.every_repeat)
        assert len(every.events) == len(writer.records) and every.stats.records_unreadable == 0
        assert every.stats.records_fallback == 0
        print(f"every record rendered (python-evtx): {fmt(every_times)}   ({len(every.events)} events, "
              f"{len(every.events) / statistics.median(every_times):,.0f} records/s)")
        first_times, first = timed(lambda: scan_file(path, provider=None, decoder_first=True), args.repeat)
        assert first.events == every.events and first.stats.records_fallback == 0, "decoder first differs"
        print(f"every record, decoder first (the evtx command): {fmt(first_times)}   "
              f"({len(first.events) / statistics.median(first_times):,.0f} records/s, the same events)")
        command_times = [command_run(path) for _ in range(args.repeat)]
        print(f"lync-owa-exporter evtx FILE --json, the whole process (wall clock): {fmt(command_times)}")
        decoder_times, decoded = timed(lambda: scan_file(path, provider=None, use_python_evtx=False), args.repeat)
        assert [(e.record_number, e.filetime, e.data) for e in decoded.events] == [
            (e.record_number, e.filetime, e.data) for e in every.events], "the two renderers disagree"
        print(f"every record decoded (decoder only): {fmt(decoder_times)}   "
              f"({len(decoded.events) / statistics.median(decoder_times):,.0f} records/s, same events)")

        rate = python_evtx_rate(path, args.sample)
        print(f"python-evtx rendering every record: {rate:,.0f} records/s, so about "
              f"{len(writer.records) / rate:,.0f} s for this file")

        owa_ids = sorted(r.xml_record_id for r in owa_records(writer))
        rust_anchor(path, args.repeat, len(writer.records), owa_ids)


if __name__ == "__main__":
    main()
