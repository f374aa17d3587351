"""The demo's log at the default level, as a process: no library chatter, and a job's failure (or an
APScheduler warning about one job) at most once while it lasts: rate-limited reminders come every
10 minutes, beyond this test. How many lines a minute a healthy estate costs is measured by
benchmarks/bench_demo_log.py (docs/operating.md)."""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import PROJECT_ROOT, free_port

pytestmark = pytest.mark.e2e

RUN_SECONDS = 40  # twenty runs of every job at a 2 s interval
LINE = re.compile(r"^ts=\S+ level=(\w+) logger=(\S+) msg=(\"(?:[^\"\\\\]|\\\\.)*\"|\S+)(.*)$")
LIBRARIES = ("pypsrp", "psrpcore", "requests", "urllib3", "apscheduler", "watchdog", "spnego")


def test_the_default_log_has_no_library_chatter_and_no_failure_twice(tmp_path):
    out_path = tmp_path / "demo.log"
    with out_path.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "demo", "--interval", "2s",
             "--web.listen-address", f"127.0.0.1:{free_port()}", "--simulator.listen", "127.0.0.1:0"],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(RUN_SECONDS)
        assert demo.poll() is None, out_path.read_text()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
    assert demo.returncode == 0

    lines = [LINE.match(line) for line in out_path.read_text().splitlines()]
    records = [(m.group(1), m.group(2), m.group(3), m.group(4)) for m in lines if m]
    assert records, "the demo logged nothing at all: the log format changed?"
    library = [r for r in records if r[1].split(".")[0] in LIBRARIES]
    assert [r for r in library if r[0] in ("debug", "info")] == []
    # A library's warning about one job (APScheduler: a firing skipped while the job still runs) once.
    repeated = collections.Counter((logger, re.sub(r" \(trigger: [^)]*\)", "", msg)) for _, logger, msg, _ in library)
    assert all(count == 1 for count in repeated.values()), repeated.most_common(3)
    # Per job: "run failed" opens a failure, "recovered" closes it; no second "run failed" in between
    # (a change of kind says "(was ...)", and the stop this test causes may fail runs in flight).
    failing: set[tuple[str, str]] = set()
    for _, _, msg, rest in records:
        job = re.search(r"collector=(\S+) target=(\S+)", rest)
        if job is None or "shutting down" in msg:
            continue
        if msg.startswith('"collector run failed') and "(was " not in msg:
            assert job.groups() not in failing, f"{job.groups()} logged its failure twice: {msg}"
            failing.add(job.groups())
        elif msg.startswith('"collector recovered'):
            assert job.groups() in failing, f"{job.groups()} recovered from a failure never logged"
            failing.discard(job.groups())
