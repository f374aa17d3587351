"""Scrape latency while the exporter polls many simulated hosts: the serving process against the
endpoint in the polling process (as before issue 16), side by side, and again once polling stops.

    .venv/bin/python benchmarks/bench_scrape_under_polling.py                 # 1,000 hosts, 100 ms, 1 s opens
    .venv/bin/python benchmarks/bench_scrape_under_polling.py --hosts 200 --seconds 30
    .venv/bin/python benchmarks/bench_scrape_under_polling.py --slowloris 1000   # and a slowloris meanwhile

Set-up: the simulated estate (``healthy`` scaled to ``--hosts``) in a child process, every host
answering after ``--latency-ms`` and opening a pool after ``--open-ms`` more (the simulator's
``latency`` fault); the real exporter (``exporter.app.Exporter``, every collector in its default
mode, ``--interval`` and ``--workers``) in this process, serving from its serving process; and, on
the same exposition cache and store, an ``ExporterHTTPServer`` in this process, which is how the
endpoint was served before. The scrapers run in a process of their own, so their own Python never
waits for the pollers' lock: ``--clients`` kept-alive connections, each scraping ``/metrics`` every
``--every`` seconds, switching between the two endpoints every ``--slice`` seconds so both see the
same moments of the poll cycle.

Phases: **polling**, ``--seconds`` from the exporter's start (the first cycle: every pool opened,
the most work there is); then the scheduler is stopped, runs in flight end, and **idle**, the same
length, with the same exposition. Printed per endpoint and phase: scrapes, failures, p50/p99/max,
and the ratio of p99 polling / p99 idle (the target for the serving process: at most 2). With
``--slowloris N`` the attacker of ``bench_slowloris.py`` holds N connections to the serving
process through both phases (the scrapers connect from ``--scraper-address``, another address, as
Prometheus would); the in-process endpoint is not attacked.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.soak import (  # noqa: E402 - the project root first, as for every benchmark run as a script
    PASSWORD,
    PASSWORD_ENV,
    SimulatorProcess,
    SoakOptions,
    process_figures,
    soak_config,
)

# --- the scrapers, in their own process -----------------------------------------------------------------


def scrape_child(ports: list[int], seconds: float, slice_seconds: float, every: float, clients: int,
                 source: str) -> None:
    latencies: dict[int, list[float]] = {port: [] for port in ports}
    failures: dict[int, int] = {port: 0 for port in ports}
    lock = threading.Lock()
    start = time.monotonic()
    end = start + seconds

    def current_port(now: float) -> int:
        return ports[int((now - start) / slice_seconds) % len(ports)]

    def client() -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        while (now := time.monotonic()) < end:
            port = current_port(now)
            conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                                                 source_address=(source, 0))
            conns[port] = conn
            began = time.perf_counter()
            try:
                conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn.close()
                conns.pop(port, None)
            took = time.perf_counter() - began
            with lock:
                if ok:
                    latencies[port].append(took)
                else:
                    failures[port] += 1
            time.sleep(max(every - took, 0))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"latencies": {str(k): v for k, v in latencies.items()},
                      "failures": {str(k): v for k, v in failures.items()}}), flush=True)


def scrape(ports: list[int], args: argparse.Namespace) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--scrape-child", ",".join(map(str, ports)), "--seconds", str(args.seconds),
         "--slice", str(args.slice), "--every", str(args.every), "--clients", str(args.clients),
         "--scraper-address", args.scraper_address],
        capture_output=True, text=True, check=True, timeout=args.seconds + 120)
    return json.loads(out.stdout)


def figures(latencies: list[float], failures: int) -> dict:
    lat = sorted(latencies)
    # Inclusive: with few scrapes the exclusive method puts p99 above the largest one.
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [float("nan")] * 99
    return {"scrapes": len(lat), "failures": failures, "p50": q[49] * 1e3, "p99": q[98] * 1e3,
            "max": (lat[-1] if lat else float("nan")) * 1e3}


def show(phase: str, name: str, result: dict) -> None:
    print(f"{phase:>8} {name:>11}: scrapes={result['scrapes']} failures={result['failures']} "
          f"p50={result['p50']:.2f} ms p99={result['p99']:.2f} ms max={result['max']:.2f} ms", flush=True)


# --- the exporter ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    import yaml

    from collectors import registry
    from exporter.app import Exporter
    from exporter.config import load_config
    from exporter.http import ExporterHTTPServer
    from exporter.logsetup import configure

    configure("error")  # the estate's warnings about plain HTTP, 1,000 times, are not the figure
    options = SoakOptions(hosts=args.hosts, interval=args.interval, timeout=args.timeout, workers=args.workers)
    with SimulatorProcess(args.hosts) as sim, tempfile.TemporaryDirectory() as tmp:
        for host in sim.hosts:
            sim.set_fault(host, "latency", latency_ms=args.latency_ms, open_latency_ms=args.open_ms)
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(soak_config(sim.hosts, options), sort_keys=False))
        exporter = Exporter(load_config(path, registry.by_name(), environ={PASSWORD_ENV: PASSWORD}), "127.0.0.1:0")
        before = ExporterHTTPServer(("127.0.0.1", 0), exporter.cache, exporter.store, healthy=lambda: True)
        ports = {"serving": exporter.server.server_address[1], "in-process": before.server_address[1]}
        attacker = None
        print(f"hosts={args.hosts} jobs={len(exporter.runners)} latency={args.latency_ms} ms open={args.open_ms} ms "
              f"interval={args.interval:g}s workers={args.workers} clients={args.clients} every={args.every:g}s "
              f"slowloris={args.slowloris}", flush=True)
        try:
            exporter.start()
            before.serve_in_thread()
            if args.slowloris:
                attacker = subprocess.Popen(
                    [sys.executable, str(ROOT / "benchmarks" / "bench_slowloris.py"), "--attack", "--port",
                     str(ports["serving"]), "--connections", str(args.slowloris), "--trickle", "5",
                     "--attacker-address", "127.0.0.3"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                time.sleep(3.0)  # the flood is in place before the scrapes are counted
            results = {}
            for phase in ("polling", "idle"):
                if phase == "idle":
                    exporter.scheduler.shutdown()
                    time.sleep(args.timeout + 2)  # runs in flight end or are abandoned
                own, serving = process_figures(), process_figures(exporter.server.pid)
                ran, sent = sum(job.runs for job in exporter.store.jobs()), exporter.server.bodies_sent
                measured = scrape(list(ports.values()), args)
                ran = sum(job.runs for job in exporter.store.jobs()) - ran
                sent = exporter.server.bodies_sent - sent
                print(f"{phase}: {ran} runs, {sent} expositions sent to the serving process "
                      f"({len(exporter.cache.latest().body) / 2**20:.1f} MB each) during the phase; "
                      f"polling process threads={own['threads']:g} "
                      f"fds={own['fds']:g} rss={own['rss'] / 2**20:.1f} MB; serving process threads="
                      f"{serving['threads']:g} fds={serving['fds']:g} rss={serving['rss'] / 2**20:.1f} MB", flush=True)
                for name, port in ports.items():
                    results[phase, name] = figures(measured["latencies"][str(port)], measured["failures"][str(port)])
                    show(phase, name, results[phase, name])
            for name in ports:
                ratio = results["polling", name]["p99"] / results["idle", name]["p99"]
                print(f"{name}: p99 polling / idle = {ratio:.2f}" + (" (target <= 2)" if name == "serving" else ""))
        finally:
            if attacker is not None:
                attacker.stdin.close()
                print(f"slowloris: {attacker.stdout.read().strip()} (connections opened, of them reopened)")
                attacker.wait(30)
            before.shutdown()
            before.server_close()
            exporter.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=100, help="added before every answer")
    parser.add_argument("--open-ms", type=int, default=1000, help="added when a pool is opened")
    parser.add_argument("--interval", type=float, default=60.0, help="every collector's, seconds")
    parser.add_argument("--timeout", type=float, default=30.0, help="every collector's deadline, seconds")
    parser.add_argument("--workers", type=int, default=64, help="global.max_concurrent_jobs")
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase")
    parser.add_argument("--slice", type=float, default=2.0, help="seconds on one endpoint before the other")
    parser.add_argument("--every", type=float, default=0.05, help="seconds between two scrapes of one client")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--slowloris", type=int, default=0, help="connections held to the serving process")
    parser.add_argument("--scraper-address", default="127.0.0.2")
    parser.add_argument("--scrape-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scrape_child:
        return scrape_child([int(p) for p in args.scrape_child.split(",")], args.seconds, args.slice, args.every,
                            args.clients, args.scraper_address)
    os.environ.setdefault(PASSWORD_ENV, PASSWORD)
    run(args)


if __name__ == "__main__":
    main()
