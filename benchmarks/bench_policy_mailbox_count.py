"""What counting an OWA mailbox policy's mailboxes costs: one owa_im_settings run against the simulator,
with and without counting, for a policy with IM off and N mailboxes (Get-CASMailbox -Filter
"OWAMailboxPolicy -eq '<DN>'" -ResultSize <limit + 1>: one CASMailbox object per mailbox on the wire).

The simulated CASMailbox carries 4 properties; a real one carries about 90, so real answers are larger
and slower per mailbox: read the figures as a floor. Each size is run ``--repeat`` times on one
remoting session (after one warm-up run) and the median wall time of a run is reported.

    .venv/bin/python benchmarks/bench_policy_mailbox_count.py
    .venv/bin/python benchmarks/bench_policy_mailbox_count.py --mailboxes 0 100 1000 5000 --limit 10000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from collector_timing import median_job_run, running_simulator

from collectors.owa_im_settings import OwaImSettingsCollector
from collectors.sources.remoting import SessionPool


def scenario(folder: Path, mailboxes: int) -> Path:
    path = folder / f"policy-{mailboxes}.yaml"
    path.write_text(f"""base: healthy
exchange_org:
  owa_mailbox_policies:
    Contractors: {{instant_messaging_enabled: false, instant_messaging_type: Ocs, mailboxes: {mailboxes}}}
""")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, nargs="+", default=[0, 100, 1000, 5000])
    parser.add_argument("--limit", type=int, default=10_000, help="mailbox_count_limit for the runs")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with running_simulator() as sim, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sessions = SessionPool()  # one remoting session for every run
        print(f"{'mailboxes':>9} {'counting off (s)':>17} {'counting on (s)':>16} {'per 1000 (s)':>13}")
        for mailboxes in args.mailboxes:
            sim.set_scenario(scenario(folder, mailboxes))
            (folder / f"off{mailboxes}").mkdir()
            (folder / f"on{mailboxes}").mkdir()
            base = median_job_run(sim, folder / f"off{mailboxes}", OwaImSettingsCollector(), "ex01", args.repeat,
                                  {"count_policy_mailboxes": False}, sessions=sessions, close=False)
            counted = median_job_run(sim, folder / f"on{mailboxes}", OwaImSettingsCollector(), "ex01", args.repeat,
                                     {"mailbox_count_limit": args.limit, "mailbox_count_interval": "1ms"},
                                     sessions=sessions, close=False)
            per_thousand = (counted - base) / mailboxes * 1000 if mailboxes else 0.0
            print(f"{mailboxes:>9} {base:>17.3f} {counted:>16.3f} {per_thousand:>13.3f}")
        sessions.close_all(timeout=5)


if __name__ == "__main__":
    main()
