"""What the per-collector benchmarks share: the simulator on loopback, and the median time of a job's runs.

The simulator serves the healthy scenario over plain HTTP with Basic authentication on every endpoint
(the tests' Kerberos realm is not needed to time answers). A job is one collector x one simulated host,
run through the real path (``tests.integration.collector_harness.Job``: configuration loader, JobRunner,
pypsrp over loopback); it runs once to warm up (which opens its runspace pools) and then ``repeat``
times, and the median wall time of those runs is what a benchmark prints.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from collectors.contract import Collector, FactsBoard  # noqa: E402
from collectors.sources.remoting import SessionPool  # noqa: E402
from simulator.server import Simulator  # noqa: E402
from tests.conftest import PASSWORD_ENV, SIM_PASSWORD, SIM_USERNAME  # noqa: E402
from tests.integration.collector_harness import Job  # noqa: E402


@contextmanager
def running_simulator() -> Iterator[Simulator]:
    """The healthy scenario on 127.0.0.1, Basic auth, no TLS; stopped on the way out."""
    os.environ.setdefault(PASSWORD_ENV, SIM_PASSWORD)
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username=SIM_USERNAME, password=SIM_PASSWORD)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def median_run(job: Job, repeat: int) -> float:
    """Median wall time of ``repeat`` runs of ``job`` after one warm-up run; every run must succeed."""
    job.run()  # warm-up: opens the runspace pools
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        status = job.run()
        times.append(time.perf_counter() - started)
        assert status.up, status.last_error
    return statistics.median(times)


def median_job_run(sim: Simulator, folder: Path, collector: Collector, target: str, repeat: int,
                   settings: dict[str, Any] | None = None, sessions: SessionPool | None = None,
                   facts: FactsBoard | None = None, close: bool = True) -> float:
    """:func:`median_run` of a new job of ``collector`` on ``target``; closed after unless ``close`` is False
    (jobs sharing ``sessions`` leave them to their caller)."""
    job = Job(sim, folder, collector, target, settings, sessions=sessions, facts=facts)
    try:
        return median_run(job, repeat)
    finally:
        if close:
            job.close()
