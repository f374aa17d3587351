"""Scrape latency with 10,000 series under concurrent scrapes (design target: p99 under 10 ms).

    .venv/bin/python benchmarks/bench_scrape.py [--series 10000] [--clients 4] [--seconds 10] [--gzip]
        [--serving-process]

Fills the snapshot store with synthetic jobs, serves it through the real HTTP server, and has
several clients scrape in a loop over real loopback connections. By default the server runs in this
process; with ``--serving-process`` it is the exporter's serving process (exporter.serving), fed by
this one over its pipe, as ``run`` serves. While it runs a writer thread
replaces one job's snapshot every second, as collectors do, so rebuilds are part of the figure.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import threading
import time

from collectors.contract import MetricSpec
from exporter.http import ExporterHTTPServer
from exporter.metrics import ExpositionCache
from exporter.serving import ServingProcess
from exporter.state import SnapshotStore

SPEC = MetricSpec("lync_owa_bench_value", "gauge", "Synthetic series.", ("replica", "check"))


def fill(store: SnapshotStore, series: int, jobs: int = 200) -> None:
    per_job = series // jobs
    for j in range(jobs):
        store.register("bench", f"host{j:03d}", 60)
        store.record_success(
            "bench", f"host{j:03d}", [SPEC.sample(i, replica=f"r{i}", check="c") for i in range(per_job)], 0.01
        )


def scrape_loop(port: int, stop: threading.Event, latencies: list[float], gzip: bool) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        started = time.perf_counter()
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"} if gzip else {})
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--gzip", action="store_true", help="ask for gzip, as Prometheus does")
    parser.add_argument("--serving-process", action="store_true", help="serve from a process of its own, as run does")
    args = parser.parse_args()

    store = SnapshotStore()
    fill(store, args.series)
    cache = ExpositionCache(store, [SPEC])
    cache.start()
    if args.serving_process:
        server = ServingProcess(("127.0.0.1", 0), cache, healthy=lambda: True, status_page=lambda: b"",
                                generation=lambda: store.generation, web_config=None, telemetry_path="/metrics",
                                reload=None)
    else:
        server = ExporterHTTPServer(("127.0.0.1", 0), cache, store, healthy=lambda: True)
    server.serve_in_thread()
    port = server.server_address[1]

    stop = threading.Event()

    def writer() -> None:  # one job's snapshot changes every second, like a collector run
        n = 0
        while not stop.wait(1.0):
            n += 1
            store.record_success("bench", "host000", [SPEC.sample(n, replica=f"r{i}", check="c") for i in range(50)], 0.01)

    per_client: list[list[float]] = [[] for _ in range(args.clients)]
    threads = [threading.Thread(target=scrape_loop, args=(port, stop, lat, args.gzip)) for lat in per_client]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    server.shutdown()
    server.server_close()
    cache.stop()

    latencies = sorted(x for lat in per_client for x in lat)
    q = statistics.quantiles(latencies, n=100)
    body = cache.render()
    print(f"series={args.series} clients={args.clients} gzip={args.gzip} serving_process={args.serving_process} "
          f"scrapes={len(latencies)} body={len(body)/1024:.0f} KiB "
          f"rebuilds={cache.rebuilds}")
    print(f"latency ms: p50={q[49]*1e3:.2f} p90={q[89]*1e3:.2f} p99={q[98]*1e3:.2f} max={latencies[-1]*1e3:.2f}")


if __name__ == "__main__":
    main()
