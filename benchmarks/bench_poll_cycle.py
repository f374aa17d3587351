"""Poll cycle over many simulated hosts with injected latency, and the exporter's memory.

    .venv/bin/python benchmarks/bench_poll_cycle.py [--hosts 200] [--latency-ms 100] [--open-latency-ms 0] [--cycles 3]
        [--auth basic|kerberos|ntlm]

``--auth kerberos`` runs a throw-away MIT KDC (tests/kdc.py: needs krb5-kdc and the kerberos extra),
makes the hosts accept Kerberos only and refuse unencrypted messages, and polls them with Kerberos and
WinRM message encryption over HTTP (the Exchange endpoint's production form); ``ntlm`` the same with
NTLM. Compare with the default, Basic without encryption.

Design targets: 200 hosts with 100 ms added to every WSMan answer complete one cycle in under
10 s; a steady-state cycle (pools reused) costs under a third of the first; RSS under 100 MB.

The simulator runs in a child process so the figures are the exporter's alone. Every host is a
front end running the CMS replication collector (the collectors that exist today), through the
real path: configuration loader, JobRunner with its deadline thread, pypsrp over loopback HTTP.
Jobs run on a pool of ``global.max_concurrent_jobs`` workers, like the scheduler's executor.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import resource
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

PASSWORD = "bench-password"
USERNAME = "sim-monitor"


def bench_scenario(hosts: int):
    from simulator.scenario import Scenario, load_scenario

    healthy = load_scenario("healthy")
    raw = copy.deepcopy(healthy.raw)
    raw["hosts"] = {name: spec for name, spec in raw["hosts"].items() if name == "fe01.contoso.com"}
    raw.pop("exchange_org", None)  # it names Exchange hosts' certificates; the bench has front ends only
    return Scenario("bench", raw).scaled(hosts)


def run_simulator(hosts: int, port_queue: "multiprocessing.Queue[str]", stop: "multiprocessing.Event",
                  auth: str = "basic", keytab: str | None = None, user_file: str | None = None) -> None:
    from simulator.server import Simulator

    extra = {} if auth == "basic" else {"auth": [auth], "keytab": keytab, "ntlm_user_file": user_file,
                                        "allow_unencrypted": False}
    sim = Simulator(scenario=bench_scenario(hosts), listen_host="127.0.0.1", control_port=0, username=USERNAME,
                    password=PASSWORD, **extra)
    sim.start()
    port_queue.put(sim.control_url)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--open-latency-ms", type=int, default=0,
                        help="extra delay when a runspace pool opens (real servers take seconds)")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--auth", choices=("basic", "kerberos", "ntlm"), default="basic",
                        help="kerberos/ntlm: a test KDC, hosts accepting only that, WinRM message encryption")
    args = parser.parse_args()

    kdc = None
    username, password = USERNAME, PASSWORD
    if args.auth != "basic":
        import os
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.kdc import MONITOR_PASSWORD, TestKDC

        kdc = TestKDC(Path(tempfile.mkdtemp(prefix="bench-kdc-")), list(bench_scenario(args.hosts).host_names()))
        kdc.start()
        os.environ.update(kdc.env)  # the child (the simulator's acceptors) inherits it, and so do we
        username, password = kdc.user_principal, MONITOR_PASSWORD
    ports: multiprocessing.Queue = multiprocessing.Queue()
    stop = multiprocessing.Event()
    child = multiprocessing.Process(
        target=run_simulator, daemon=True,
        args=(args.hosts, ports, stop, args.auth, str(kdc.service_keytab) if kdc else None,
              str(kdc.ntlm_user_file) if kdc else None))
    child.start()
    control_url = ports.get(timeout=120)
    try:
        state = control(control_url, "/control/state")
        for host in state["hosts"]:
            control(control_url, "/control/faults", {"host": host, "fault": "latency", "latency_ms": args.latency_ms,
                                                  "open_latency_ms": args.open_latency_ms}, "POST")

        from collectors import registry
        from collectors.sources.remoting import SessionPool
        from exporter.config import load_config
        from exporter.scheduler import JobRunner
        from exporter.state import SnapshotStore

        if args.auth == "basic":
            endpoint = lambda name: {"encryption": "never"}  # noqa: E731
        else:
            endpoint = lambda name: {"encryption": "auto", "spn_hostname": name}  # noqa: E731
        targets = [
            {"name": name.split(".")[0], "host": name, "roles": info["roles"], "credential": "sim",
             "endpoints": {"windows": {"url": info["windows_url"], **endpoint(name)}}}
            for name, info in state["hosts"].items()
        ]
        document = {
            "global": {"max_concurrent_jobs": args.workers},
            "credentials": {"sim": {"username": username, "password_env": "BENCH_PASSWORD", "auth": args.auth}},
            "collectors": {"cms_replication": {"interval": "60s", "timeout": "30s"}},
            "targets": targets,
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(yaml.safe_dump(document))
            config = load_config(path, registry.by_name(), environ={"BENCH_PASSWORD": password})
        store, sessions = SnapshotStore(), SessionPool()
        collectors = registry.by_name()
        instances = {name: cls() for name, cls in collectors.items()}
        only = {"cms_replication": collectors["cms_replication"]}  # the collector this bench measures
        runners = [JobRunner(instances[j.collector], j, store, sessions) for j in config.jobs(only)]
        rss_before = rss_mb()
        print(f"hosts={args.hosts} jobs={len(runners)} auth={args.auth} latency={args.latency_ms}ms "
              f"open_latency={args.open_latency_ms}ms workers={args.workers} rss_before={rss_before:.0f}MB")
        cycle_times = []
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for cycle in range(args.cycles):
                started = time.perf_counter()
                list(pool.map(lambda r: r(), runners))
                elapsed = time.perf_counter() - started
                cycle_times.append(elapsed)
                ok = sum(1 for j in store.jobs() if j.up)
                print(f"cycle {cycle + 1}: {elapsed:.2f}s, {ok}/{len(runners)} jobs up, rss={rss_mb():.0f}MB, "
                      f"threads={threading.active_count()}")
        steady = min(cycle_times[1:]) if len(cycle_times) > 1 else float("nan")
        print(f"first={cycle_times[0]:.2f}s steady={steady:.2f}s ratio={steady / cycle_times[0]:.2f} "
              f"rss={rss_mb():.0f}MB")
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
