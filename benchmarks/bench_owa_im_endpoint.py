"""What the checks of OWA's IM endpoint cost their jobs, on one simulated Exchange 2019 server with an injected
latency per answer:

- ``im_certificate``: the run with the IM setting override's loaded values read (one more command,
  Get-ExchangeDiagnosticInfo ... -Component VariantConfiguration on the Exchange endpoint) against the same
  run without it (the collector's reader replaced by "not judged");
- ``tls_probe``: the run probing the OWA trusted application's port too (one more TLS handshake, made at the
  same time as the one on 443) against the run with ``probe_trusted_application_ports: false``.

Each variant runs ``--repeat`` times after one warm-up run and the median wall time of a run is reported.

    .venv/bin/python benchmarks/bench_owa_im_endpoint.py
    .venv/bin/python benchmarks/bench_owa_im_endpoint.py --latency-ms 0 100 --repeat 10
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from collector_timing import median_job_run, running_simulator

import collectors.im_certificate.collector as im_collector
from collectors.contract import FactsBoard
from collectors.sources.remoting import SessionPool
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS, TrustedPool
from collectors.tls_probe.collector import TlsProbeCollector
from simulator.server import Simulator

HOST = "ex02.contoso.com"


def im_certificate(sim: Simulator, folder: Path, repeat: int, with_check: bool) -> float:
    judge = im_collector.judge_override
    if not with_check:
        im_collector.judge_override = lambda ctx, im, server, logged: (None, logged)
    try:
        return median_job_run(sim, folder, im_collector.ImCertificateCollector(), "ex02", repeat,
                              sessions=SessionPool())
    finally:
        im_collector.judge_override = judge


def tls_probe(sim: Simulator, folder: Path, repeat: int, with_check: bool) -> float:
    info = sim.hosts()[HOST]
    board = FactsBoard()
    board.post(OWA_TRUSTED_POOLS, (TrustedPool("owa.contoso.com", (HOST,), (5199,)),), 3600)
    settings = {"connect_addresses": dict(info.tls_services), "ca_file": info.tls_ca_file,
                "probe_trusted_application_ports": with_check}
    return median_job_run(sim, folder, TlsProbeCollector(), "ex02", repeat, settings, facts=board)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, nargs="+", default=[0, 100])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with running_simulator() as sim:
        print(f"{'collector':>15} {'latency (ms)':>12} {'without (s)':>12} {'with (s)':>9} {'added (s)':>10}")
        with tempfile.TemporaryDirectory() as tmp:
            for latency in args.latency_ms:
                sim.clear_faults(HOST)
                if latency:
                    sim.set_fault(HOST, "latency", latency_ms=latency)
                for name, measure in (("im_certificate", im_certificate), ("tls_probe", tls_probe)):
                    results = {}
                    for with_check in (False, True):
                        folder = Path(tmp) / f"{name}-{latency}-{with_check}"
                        folder.mkdir()
                        results[with_check] = measure(sim, folder, args.repeat, with_check)
                    added = results[True] - results[False]
                    print(f"{name:>15} {latency:>12} {results[False]:>12.3f} {results[True]:>9.3f} {added:>10.3f}")


if __name__ == "__main__":
    main()
