"""What the check "OWA's worker started after the IM setting override changed" costs ``im_certificate``, on
one simulated Exchange 2019 server with an injected latency per answer.

The check adds one command on the Windows endpoint (Get-CimInstance -ClassName Win32_Process -Filter
"Name='w3wp.exe'"); the run with it is compared with the same run with the check replaced by "not
judged". Each variant runs ``--repeat`` times after one warm-up run, in ``--rounds`` alternating rounds;
the minimum over rounds of each round's median is printed, as wall time and as CPU time of this process
(the simulator answers in the same process, so the CPU figure is client and server together).

    .venv/bin/python benchmarks/bench_override_recycle.py
    .venv/bin/python benchmarks/bench_override_recycle.py --latency-ms 0 100 --repeat 7 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from collector_timing import running_simulator  # noqa: E402

import collectors.im_certificate.collector as im_collector  # noqa: E402
from collectors.contract import FactsBoard  # noqa: E402
from collectors.sources.remoting import SessionPool  # noqa: E402
from simulator.server import Simulator  # noqa: E402
from tests.integration.collector_harness import Job  # noqa: E402

HOST = "ex02.contoso.com"


def medians(sim: Simulator, folder: Path, repeat: int, with_check: bool) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of a run of ex02's im_certificate job."""
    judge = im_collector.judge_recycled
    if not with_check:
        im_collector.judge_recycled = lambda ctx, im, changed_at: None
    job = Job(sim, folder, im_collector.ImCertificateCollector(), "ex02", sessions=SessionPool(), facts=FactsBoard())
    try:
        job.run()  # warm-up: opens the runspace pools
        walls, cpus = [], []
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            status = job.run()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            assert status.up, status.last_error
        return statistics.median(walls), statistics.median(cpus)
    finally:
        job.close()
        im_collector.judge_recycled = judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[0, 100])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with running_simulator() as sim, tempfile.TemporaryDirectory() as tmp:
        print(f"{'latency (ms)':>12} {'wall without':>13} {'wall with':>10} {'cpu without':>12} {'cpu with':>9}")
        for latency in args.latency_ms:
            sim.clear_faults(HOST)
            if latency:
                sim.set_fault(HOST, "latency", latency_ms=latency)
            best: dict[bool, tuple[float, float]] = {}
            for round_ in range(args.rounds):
                for with_check in (False, True):
                    folder = Path(tmp) / f"{latency}-{round_}-{with_check}"
                    folder.mkdir()
                    wall, cpu = medians(sim, folder, args.repeat, with_check)
                    old = best.get(with_check, (wall, cpu))
                    best[with_check] = (min(old[0], wall), min(old[1], cpu))
            print(f"{latency:>12} {best[False][0]:>13.3f} {best[True][0]:>10.3f} "
                  f"{best[False][1]:>12.3f} {best[True][1]:>9.3f}")


if __name__ == "__main__":
    main()
