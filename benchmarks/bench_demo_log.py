"""How much the demo logs in a healthy estate: lines a minute at the default level, after start-up.

Runs the real demo (simulated estate + exporter) as a process for ``--seconds``, counts its log lines
per logger, and reports the steady state (everything after the first ``--settle`` seconds) as lines a
minute. With ``--log.level debug`` it also counts what the libraries log at INFO and above, which is
what they printed at the default level before they were held at WARNING.

    .venv/bin/python benchmarks/bench_demo_log.py --seconds 300
    .venv/bin/python benchmarks/bench_demo_log.py --seconds 120 --log.level debug
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("pypsrp", "psrpcore", "requests", "urllib3", "apscheduler", "watchdog", "spnego")
LINE = re.compile(r"^ts=(\S+) level=(\w+) logger=(\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--settle", type=float, default=60.0, help="start-up seconds left out of the rate")
    parser.add_argument("--interval", default="10s", help="the demo's collector interval")
    parser.add_argument("--log.level", dest="log_level", default="info")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "demo.log"
        with log_path.open("w") as log_file:
            demo = subprocess.Popen(
                [sys.executable, "-m", "exporter.cli", "demo", "--web.listen-address", f"127.0.0.1:{free_port()}",
                 "--simulator.listen", "127.0.0.1:0", "--interval", args.interval, "--log.level", args.log_level],
                cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
            started = dt.datetime.now(dt.timezone.utc)
            time.sleep(args.seconds)
            demo.send_signal(signal.SIGINT)
            demo.wait(60)
        text = log_path.read_text(errors="replace")

    settled = started + dt.timedelta(seconds=args.settle)
    steady: collections.Counter = collections.Counter()
    startup: collections.Counter = collections.Counter()
    library_info_or_above: collections.Counter = collections.Counter()
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        when, level, logger = dt.datetime.fromisoformat(match.group(1)), match.group(2), match.group(3)
        if "signal received" in line or logger == "exporter.app" and "stopped" in line:
            continue  # the shutdown this benchmark caused
        (steady if when >= settled else startup)[logger] += 1
        if when >= settled and logger.split(".")[0] in LIBRARIES and level not in ("debug",):
            library_info_or_above[logger] += 1
    minutes = (args.seconds - args.settle) / 60
    print(f"demo, --log.level {args.log_level}, interval {args.interval}, {args.seconds:.0f} s "
          f"({args.settle:.0f} s start-up left out)")
    print(f"  start-up lines:        {sum(startup.values())}  {dict(startup.most_common(5))}")
    print(f"  steady state:          {sum(steady.values()) / minutes:.1f} lines/minute  {dict(steady.most_common(5))}")
    if args.log_level == "debug":
        rates = {name: round(count / minutes, 1) for name, count in library_info_or_above.most_common(5)}
        print(f"  libraries at INFO+:    {sum(library_info_or_above.values()) / minutes:.1f} lines/minute, "
              f"per logger a minute: {rates}")


if __name__ == "__main__":
    main()
