"""What reading the OAuthTokenIssuer certificate's key size costs a front end's lync_certificates run: the
run with the key read from the front end's store (Get-Item -LiteralPath Cert:\\LocalMachine\\My\\<thumbprint>
on the Windows endpoint) against the same run without it (the collector's store read replaced by "unknown",
as before the check read it), on one simulated front end with an injected latency per answer.

Each variant runs ``--repeat`` times after one warm-up run (which opens the runspace pools: the Lync
endpoint, and the Windows endpoint for the key) and the median wall time of a run is reported.

    .venv/bin/python benchmarks/bench_lync_oauth_key.py
    .venv/bin/python benchmarks/bench_lync_oauth_key.py --latency-ms 0 100 --repeat 10
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from collector_timing import median_job_run, running_simulator

import collectors.lync_certificates as lync_certificates
from collectors.sources.remoting import SessionPool

HOST = "fe01.contoso.com"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[0, 100])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    reads_store = lync_certificates._store_key_size
    with running_simulator() as sim:
        print(f"{'latency (ms)':>12} {'without key read (s)':>21} {'with key read (s)':>18} {'added (s)':>10}")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for latency in args.latency_ms:
                    sim.clear_faults(HOST)
                    if latency:
                        sim.set_fault(HOST, "latency", latency_ms=latency)
                    results = {}
                    for variant in ("without", "with"):
                        lync_certificates._store_key_size = (
                            reads_store if variant == "with" else (lambda ctx, t: None))
                        folder = Path(tmp) / f"{variant}-{latency}"
                        folder.mkdir()
                        results[variant] = median_job_run(sim, folder, lync_certificates.LyncCertificatesCollector(),
                                                          "fe01", args.repeat, sessions=SessionPool())
                    added = results["with"] - results["without"]
                    print(f"{latency:>12} {results['without']:>21.3f} {results['with']:>18.3f} {added:>10.3f}")
        finally:
            lync_certificates._store_key_size = reads_store


if __name__ == "__main__":
    main()
