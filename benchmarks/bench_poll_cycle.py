"""Poll cycle over many simulated hosts with injected latency, beside its round-trip floor, and memory.

    .venv/bin/python benchmarks/bench_poll_cycle.py --hosts 1000 --latency-ms 100 --open-latency-ms 1000
        [--cycles 3] [--workers N] [--auth basic|kerberos|ntlm] [--glibc-arenas]

The estate is the healthy scenario scaled to ``--hosts`` (Exchange servers, front ends and Edges in
the scenario's proportions), every host with ``--latency-ms`` added to every WSMan answer and
``--open-latency-ms`` more when a runspace pool opens (real servers take about a second). Every
collector of the registry runs on every host whose roles it serves, configured as the demo configures
them (``exporter.demo.demo_config``: the TLS probe connects to the simulator's loopback listeners),
through the real path: configuration loader, JobRunner with its deadline thread, pypsrp over loopback
HTTP. Jobs run on ``--workers`` threads (default: ``global.max_concurrent_jobs``' default), like the
scheduler's executor, and share one series cap and stop signal as the scheduler's jobs do. The process
caps glibc's malloc arenas as the exporter does at start (``exporter.malloc_arenas``; ``--glibc-arenas``
leaves them uncapped). The simulator runs in a child process, so RSS and CPU are the exporter's alone;
``benchmarks/bench_memory_per_host.py`` says where the memory goes.

The floor: before the cycles, every job of one spare host per template (never polled in the cycles)
runs alone and cold, one after another; the requests its host served (or fewer, when its time less
the pool opening, divided by the latency, says so) are its sequential round trips, and the busiest
job's give ``floor = round trips x latency + pool open``: no exporter can finish a first cycle sooner. The targets (issue 16): first cycle within 2x the floor,
steady cycles at most a third of the first, RSS under 150 MB.

``--auth kerberos`` runs a throw-away MIT KDC (tests/kdc.py: needs krb5-kdc and the kerberos extra),
makes the hosts accept Kerberos only and refuse unencrypted messages, and polls them with Kerberos and
WinRM message encryption over HTTP (the Exchange endpoint's production form); ``ntlm`` the same with
NTLM. Compare with the default, Basic without encryption.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
import types
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSWORD = "bench-password"
USERNAME = "sim-monitor"


def bench_scenario(hosts: int):
    from simulator.scenario import load_scenario

    return load_scenario("healthy").scaled(hosts)


def run_simulator(hosts: int, answers: "multiprocessing.Queue", stop: "multiprocessing.Event",
                  auth: str = "basic", keytab: str | None = None, user_file: str | None = None) -> None:
    import dataclasses

    from simulator.server import Simulator

    extra = {} if auth == "basic" else {"auth": [auth], "keytab": keytab, "ntlm_user_file": user_file,
                                        "allow_unencrypted": False}
    sim = Simulator(scenario=bench_scenario(hosts), listen_host="127.0.0.1", control_port=0, username=USERNAME,
                    password=PASSWORD, **extra)
    sim.start()
    answers.put((sim.control_url, {name: dataclasses.asdict(info) for name, info in sim.hosts().items()}))
    stop.wait()
    sim.stop()


def control(url: str, path: str, body: dict | None = None, method: str = "GET") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of process ``pid`` (the simulator)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connections_per_port() -> dict[int, int]:
    """Established TCP connections this process holds, by remote port (one port per simulated host)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    counts: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes and fields[3] == "01":
            port = int(fields[2].split(":")[1], 16)
            counts[port] = counts.get(port, 0) + 1
    return counts


def bench_config(hosts: dict[str, dict], auth: str, username: str, workers: int) -> dict:
    """The demo's configuration of these hosts, with the bench's credential and workers."""
    from exporter.demo import demo_config

    infos = {name: types.SimpleNamespace(**info) for name, info in hosts.items()}
    document = demo_config(infos, "60s", None)
    document["global"]["max_concurrent_jobs"] = workers
    document["credentials"] = {"sim": {"username": username, "password_env": "BENCH_PASSWORD", "auth": auth}}
    for target in document["targets"]:
        target["credential"] = "sim"
        if auth != "basic":
            for endpoint in target["endpoints"].values():
                endpoint.update({"encryption": "auto", "spn_hostname": target["host"]})
    return document


def share_as_the_scheduler_does(runners: list) -> None:
    """Give the runners the objects the scheduler shares between every job (``CollectionScheduler._schedule``):
    one series cap and one stop signal. Each keeps a target guard of its own, so no cap on runs per target
    applies (the benchmark's thread pool is not APScheduler, which would fire a refused job again)."""
    from exporter.series_cap import SeriesCap

    series_cap, stopping = SeriesCap(), threading.Event()
    for runner in runners:
        runner.series_cap, runner.stopping = series_cap, stopping


def measure_floor(runners_by_host: dict[str, list], latency: float, open_latency: float,
                  requests_of: "Callable[[str], int]") -> tuple[float, int, str]:
    """Every job of the spare hosts, alone and cold: (floor seconds, round trips, busiest job).

    A job's sequential round trips are the WSMan requests its host served during the run (its calls
    one after another; calls a job makes at once count each), or fewer when its time says so: the
    time, less the pool opening, divided by the latency. The count does not grow when the machine is
    busy; the time does not grow with calls made at once.
    """
    from collectors.sources.remoting import SessionPool

    busiest, most = "", 0
    for host, runners in runners_by_host.items():
        # Front ends first: an Edge's job reads the CMS copy a front end's job posts.
        for runner in sorted(runners, key=lambda r: "lync_edge" in r.spec.target.roles):
            runner.endpoints.sessions = SessionPool()  # cold: its pool opens inside the timed run
            served, started = requests_of(host), time.perf_counter()
            runner()
            took, served = time.perf_counter() - started, requests_of(host) - served
            runner.endpoints.sessions.close_all()
            timed = round((took - open_latency) / latency) if latency else served
            round_trips = max(min(served, timed), 1)
            if round_trips > most:
                busiest, most = runner.job_id, round_trips
    return most * latency + open_latency, most, busiest


def main() -> None:
    from exporter.config import GlobalSettings

    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--open-latency-ms", type=int, default=1000,
                        help="extra delay when a runspace pool opens (real servers take about a second)")
    parser.add_argument("--workers", type=int, default=GlobalSettings().max_concurrent_jobs)
    parser.add_argument("--auth", choices=("basic", "kerberos", "ntlm"), default="basic",
                        help="kerberos/ntlm: a test KDC, hosts accepting only that, WinRM message encryption")
    parser.add_argument("--glibc-arenas", action="store_true",
                        help="leave glibc's malloc arenas uncapped (the exporter caps them: exporter.malloc_arenas)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the cycle lines name failing collectors; no line per job
    from exporter.fd_budget import raise_open_file_limit

    raise_open_file_limit()  # as the exporter does at start: a thousand hosts hold thousands of sockets
    if not args.glibc_arenas:
        from exporter.malloc_arenas import limit_malloc_arenas

        limit_malloc_arenas()  # as the exporter does at start (run, demo)
    from simulator.scenario import load_scenario

    spare = len(load_scenario("healthy").raw["hosts"])  # one spare host per template, for the floor
    total = args.hosts + spare

    kdc = None
    username, password = USERNAME, PASSWORD
    if args.auth != "basic":
        from tests.kdc import MONITOR_PASSWORD, TestKDC

        kdc = TestKDC(Path(tempfile.mkdtemp(prefix="bench-kdc-")), list(bench_scenario(total).host_names()))
        kdc.start()
        os.environ.update(kdc.env)  # the child (the simulator's acceptors) inherits it, and so do we
        username, password = kdc.user_principal, MONITOR_PASSWORD
    answers: multiprocessing.Queue = multiprocessing.Queue()
    stop = multiprocessing.Event()
    child = multiprocessing.Process(
        target=run_simulator, daemon=True,
        args=(total, answers, stop, args.auth, str(kdc.service_keytab) if kdc else None,
              str(kdc.ntlm_user_file) if kdc else None))
    child.start()
    control_url, hosts = answers.get(timeout=300)
    try:
        for host in hosts:
            control(control_url, "/control/faults", {"host": host, "fault": "latency", "latency_ms": args.latency_ms,
                                                  "open_latency_ms": args.open_latency_ms}, "POST")

        from collectors import registry
        from collectors.contract import FactsBoard
        from collectors.sources.remoting import SessionPool
        from exporter.config import load_config
        from exporter.scheduler import JobRunner
        from exporter.state import SnapshotStore

        document = bench_config(hosts, args.auth, username, args.workers)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(yaml.safe_dump(document))
            config = load_config(path, registry.by_name(), environ={"BENCH_PASSWORD": password})
        collectors = registry.by_name()
        instances = {name: cls() for name, cls in collectors.items()}
        spare_hosts = set(list(hosts)[-spare:])
        store, sessions, facts = SnapshotStore(), SessionPool(), FactsBoard()
        runners, floor_runners = [], {}
        for job in config.jobs(collectors):
            if job.target.host in spare_hosts:
                floor_runners.setdefault(job.target.host, []).append(
                    JobRunner(instances[job.collector], job, SnapshotStore(), sessions, config.global_, facts))
            else:
                runners.append(JobRunner(instances[job.collector], job, store, sessions, config.global_, facts))
        share_as_the_scheduler_does(runners)
        latency, open_latency = args.latency_ms / 1000, args.open_latency_ms / 1000
        floor, round_trips, busiest = measure_floor(
            floor_runners, latency, open_latency,
            lambda host: control(control_url, "/control/stats")[host]["requests"])
        rss_before = rss_mb()
        print(f"hosts={args.hosts} jobs={len(runners)} collectors={len(collectors)} auth={args.auth} "
              f"latency={args.latency_ms}ms open_latency={args.open_latency_ms}ms workers={args.workers} "
              f"rss_before={rss_before:.0f}MB")
        print(f"floor={floor:.2f}s ({round_trips} sequential round trips x {args.latency_ms} ms + "
              f"{args.open_latency_ms} ms pool open; busiest job alone: {busiest})")
        cycle_times = []
        requests_before = sum(h["requests"] for h in control(control_url, "/control/stats").values())
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for cycle in range(args.cycles):
                cpu, sim_cpu, started = cpu_seconds(), cpu_seconds(child.pid), time.perf_counter()
                list(pool.map(lambda r: r(), runners))
                elapsed = time.perf_counter() - started
                cpu, sim_cpu = cpu_seconds() - cpu, cpu_seconds(child.pid) - sim_cpu
                cycle_times.append(elapsed)
                requests_now = sum(h["requests"] for h in control(control_url, "/control/stats").values())
                sent, requests_before = requests_now - requests_before, requests_now
                jobs = store.jobs()
                ok = sum(1 for j in jobs if j.up)
                failing = sorted({j.collector for j in jobs if not j.up})
                print(f"cycle {cycle + 1}: {elapsed:.2f}s, {ok}/{len(runners)} jobs up"
                      f"{' (failing: ' + ', '.join(failing) + ')' if failing else ''}, {sent} WSMan requests, "
                      f"exporter CPU {cpu:.1f}s ({1000 * cpu / max(sent, 1):.2f} ms a request), simulator CPU "
                      f"{sim_cpu:.1f}s, "
                      f"rss={rss_mb():.0f}MB, threads={threading.active_count()}")
                down = [j for j in jobs if not j.up]
                if down:  # why, by kind, with one message of each: a timeout under load is not a bug
                    kinds = Counter(j.last_error_kind for j in down)
                    first = {j.last_error_kind: f"{j.collector}/{j.target}: {j.last_error}" for j in reversed(down)}
                    for kind, count in kinds.most_common():
                        print(f"  {count} down by {kind or 'no error yet'}, e.g. {first[kind][:300]}")
        steady = min(cycle_times[1:]) if len(cycle_times) > 1 else float("nan")
        ports = {info["port"] for info in hosts.values()}
        connections = max((n for port, n in connections_per_port().items() if port in ports), default=0)
        print(f"first={cycle_times[0]:.2f}s ({cycle_times[0] / floor:.2f}x the floor {floor:.2f}s) "
              f"steady={steady:.2f}s ratio={steady / cycle_times[0]:.2f} rss={rss_mb():.0f}MB "
              f"most connections to one host={connections}")
        if args.auth != "basic":
            used = control(control_url, "/control/stats")
            mechanisms = {key: sum(h.get(key, 0) for h in used.values())
                          for key in ("auth_basic", "auth_kerberos", "auth_ntlm", "requests_encrypted")}
            print(f"served: {mechanisms}")
        sessions.close_all()
    finally:
        stop.set()
        child.join(30)
        if kdc is not None:
            kdc.stop()


if __name__ == "__main__":
    main()
