"""Where the exporter's memory goes while it polls N hosts: RSS, the C heap, and Python's allocations.

    .venv/bin/python benchmarks/bench_memory_per_host.py --hosts 200 [--cycles 2] [--latency-ms 0]
        [--tracemalloc] [--top 25] [--workers N] [--glibc-arenas]
    .venv/bin/python benchmarks/bench_memory_per_host.py --tls-contexts 50
    .venv/bin/python benchmarks/bench_memory_per_host.py --hosts 40 --https-sessions ca|bundle|http

The estate and the jobs are ``bench_poll_cycle.py``'s (the healthy scenario scaled to ``--hosts``,
every collector of each role, the demo's configuration, the simulator in a child process), run with no
injected latency by default: memory depends on what is kept per host, not on how long answers take.
After start-up, after the jobs are built, and after each cycle it prints:

- RSS (``VmRSS``) and its split: anonymous memory (the heaps) and file-backed pages (shared libraries);
  the anonymous memory by mapping: thread stacks, glibc's secondary arenas, the main heap, the rest
  (mostly pymalloc's arenas, where Python's small objects live);
- glibc's view of its heaps (``mallinfo2``): bytes in use, bytes free but kept, how many arenas;
- Python's own allocations (``sys.getallocatedblocks``) and the threads alive.

Then the same after ``gc.collect()`` and after ``malloc_trim(0)`` (what glibc kept free and could give
back), and per host: the growth of each figure from "jobs built" to the last cycle, divided by the hosts.
Like ``bench_poll_cycle.py``, the process caps glibc's arenas as the exporter does (``--glibc-arenas``: not).
``--tracemalloc`` traces Python allocations from before the jobs are built (slower: about twice the
CPU) and prints the largest live allocations by line, by file and by package, and the object types
with the most memory (shallow ``sys.getsizeof``, from ``gc.get_objects``). ``--tls-contexts N`` only
measures what one TLS probe client context with the system CAs costs; ``--https-sessions`` what one
remoting session costs over HTTPS (a pool opened on each host's Windows endpoint of a simulator with TLS),
trusting the simulator's CA alone or within a bundle the size of the system store (or over HTTP).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import ctypes.util
import gc
import logging
import multiprocessing
import sys
import tempfile
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_poll_cycle import (  # noqa: E402 - the project root first, as for every benchmark run as a script
    PASSWORD,
    USERNAME,
    bench_config,
    control,
    cpu_seconds,
    run_simulator,
    share_as_the_scheduler_does,
)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_LIBC = _libc()


def heap_figures() -> dict[str, float]:
    """glibc's heaps in MB: in use (small blocks + mmapped), free but kept; empty where not glibc."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return {}
    _LIBC.mallinfo2.restype = _Mallinfo2
    info = _LIBC.mallinfo2()
    return {"heap_used": (info.uordblks + info.hblkhd) / 2**20, "heap_free": info.fordblks / 2**20,
            "heap_mmapped": info.hblkhd / 2**20}


def arena_count() -> int:
    """How many malloc arenas exist (glibc's ``malloc_info`` XML, one ``<heap>`` per arena)."""
    if _LIBC is None or not hasattr(_LIBC, "malloc_info"):
        return 0
    _LIBC.fdopen.restype = ctypes.c_void_p
    _LIBC.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    _LIBC.fclose.argtypes = (ctypes.c_void_p,)
    with tempfile.TemporaryFile() as out:
        stream = _LIBC.fdopen(_LIBC.dup(out.fileno()), b"w")
        _LIBC.malloc_info(0, stream)
        _LIBC.fclose(stream)
        out.seek(0)
        return out.read().count(b"<heap nr=")


def rss_split() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024
    return {"rss": fields.get("VmRSS", 0.0), "anon": fields.get("RssAnon", 0.0), "file": fields.get("RssFile", 0.0)}


def anonymous_mappings() -> dict[str, float]:
    """Resident anonymous memory in MB by what its mappings look like (``/proc/self/smaps``): thread
    stacks (8 MiB with a guard page below), glibc's secondary arenas (64 MiB reserved each), the main
    heap (``[heap]``), and the rest (pymalloc's 1 MiB arenas, large mmapped blocks, libraries' data)."""
    sizes = {"stacks": 0.0, "arenas64": 0.0, "brk_heap": 0.0, "other_anon": 0.0}
    kind, previous_end = None, 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            start, end = (int(x, 16) for x in head[0].split("-"))
            path = head[5] if len(head) > 5 else ""
            size = end - start
            if path == "[heap]":
                kind = "brk_heap"
            elif path:
                kind = None  # file-backed or [stack]/[vdso]: not the heaps
            elif size == 8 * 2**20 and start == previous_end:  # a stack right above its guard page
                kind = "stacks"
            elif size == 64 * 2**20 or (start % (64 * 2**20) == 0 and size < 64 * 2**20):
                kind = "arenas64"  # a secondary arena's heap: 64 MiB aligned, partly mapped read-write
            else:
                kind = "other_anon"
            previous_end = end
        elif head[0] == "Rss:" and kind is not None:
            sizes[kind] += int(head[1]) / 1024
    return sizes


def figures() -> dict[str, float]:
    result = rss_split()
    result.update(anonymous_mappings())
    result.update(heap_figures())
    result["arenas"] = arena_count()
    result["py_blocks_k"] = sys.getallocatedblocks() / 1000
    result["threads"] = threading.active_count()
    return result


def show(label: str, values: dict[str, float]) -> None:
    print(f"{label:<22} " + " ".join(f"{key}={value:.1f}" for key, value in values.items()), flush=True)


def _package_of(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for root in ("collectors", "exporter", "benchmarks", "simulator"):
        if root in parts:
            return root
    return "stdlib" if "python3" in filename else Path(filename).name


def print_tracemalloc(snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot, hosts: int, top: int,
                      what: str) -> None:
    snapshot = snapshot.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
    base = base.filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
    total = sum(stat.size for stat in snapshot.statistics("filename"))
    grown = total - sum(stat.size for stat in base.statistics("filename"))
    print(f"\ntracemalloc, {what}: {total / 2**20:.1f} MB live, {grown / 2**20:.1f} MB more than before "
          f"({grown / hosts / 1024:.1f} kB a host)")
    by_package: collections.Counter[str] = collections.Counter()
    for stat in snapshot.compare_to(base, "filename"):
        by_package[_package_of(stat.traceback[0].filename)] += stat.size_diff
    print("growth by package (kB a host):")
    for package, size in by_package.most_common(top):
        print(f"  {size / hosts / 1024:8.1f}  {package}")
    print("growth by line (kB a host, count a host):")
    for stat in snapshot.compare_to(base, "lineno")[:top]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / hosts / 1024:8.1f}  {stat.count_diff / hosts:7.1f}  "
              f"{_short(frame.filename)}:{frame.lineno}")


def _short(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    for root in ("collectors", "exporter", "benchmarks"):
        if root in parts:
            return "/".join(parts[parts.index(root):])
    return Path(filename).name


def type_sizes() -> collections.Counter[str]:
    sizes: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        try:
            sizes[f"{type(obj).__module__}.{type(obj).__qualname__}"] += sys.getsizeof(obj)
        except TypeError:
            pass
    return sizes


def measure_tls_contexts(count: int) -> None:
    """What one TLS probe context with the system CAs costs (the probe shares one per trust setting)."""
    from collectors.sources.tls import _new_client_context

    before, cpu = rss_split()["rss"], time.process_time()
    kept = [_new_client_context(None) for _ in range(count)]
    cpu, grown = time.process_time() - cpu, rss_split()["rss"] - before
    print(f"{len(kept)} client contexts with the system CAs: {grown * 1024 / count:.0f} kB of RSS and "
          f"{1000 * cpu / count:.1f} ms of CPU each")


def _tls_simulator(hosts: int, answers: "multiprocessing.Queue", stop: "multiprocessing.Event", tls: bool) -> None:
    import dataclasses

    from benchmarks.bench_poll_cycle import bench_scenario
    from simulator.server import Simulator

    sim = Simulator(scenario=bench_scenario(hosts), listen_host="127.0.0.1", control_port=0, username=USERNAME,
                    password=PASSWORD, tls=tls)
    sim.start()
    answers.put((sim.ca_cert_path, {name: dataclasses.asdict(info) for name, info in sim.hosts().items()}))
    stop.wait()
    sim.stop()


def measure_https_sessions(hosts: int, trust: str) -> None:
    """RSS a remoting session costs over HTTPS: one pool opened on every simulated host's Windows endpoint,
    trusting the simulator's CA alone (``ca``) or in a bundle the size of the system store (``bundle``);
    ``http``: the same over plain HTTP, for comparison."""
    from collectors.contract import Deadline
    from collectors.sources.remoting import EndpointSpec, SessionPool

    spawn = multiprocessing.get_context("spawn")
    answers, stop = spawn.Queue(), spawn.Event()
    child = spawn.Process(target=_tls_simulator, daemon=True, args=(hosts, answers, stop, trust != "http"))
    child.start()
    ca_file, infos = answers.get(timeout=600)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if trust == "bundle":  # what tls_verify without a ca_file loads: the system store
                import ssl

                bundle = Path(tmp) / "bundle.pem"
                bundle.write_text(Path(ssl.get_default_verify_paths().cafile or "").read_text()
                                  + Path(ca_file).read_text())
                ca_file = str(bundle)
            sessions = SessionPool()
            gc.collect()
            before = rss_split()["rss"]
            for info in infos.values():
                spec = EndpointSpec(url=info["windows_url"], configuration="Microsoft.PowerShell", username=USERNAME,
                                    password=PASSWORD, auth="basic", ca_file=ca_file, encryption="never")
                sessions.get(spec)._ensure_pool(Deadline(60))  # opens the pool: one HTTPS connection
            gc.collect()
            grown = rss_split()["rss"] - before
            print(f"{len(infos)} sessions ({trust}): {grown * 1024 / len(infos):.0f} kB of RSS each")
            sessions.close_all()
    finally:
        stop.set()
        child.join(30)


def main() -> None:
    from exporter.config import GlobalSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--workers", type=int, default=GlobalSettings().max_concurrent_jobs)
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations (slower)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--glibc-arenas", action="store_true",
                        help="leave glibc's malloc arenas uncapped (the exporter caps them: exporter.malloc_arenas)")
    parser.add_argument("--tls-contexts", type=int, default=0, metavar="N",
                        help="only measure N TLS probe client contexts with the system CAs, then exit")
    parser.add_argument("--https-sessions", choices=("ca", "bundle", "http"),
                        help="only measure --hosts remoting sessions over HTTPS trusting the CA alone or a "
                             "system-size bundle, then exit")
    args = parser.parse_args()
    if args.tls_contexts:
        measure_tls_contexts(args.tls_contexts)
        return
    if args.https_sessions:
        measure_https_sessions(args.hosts, args.https_sessions)
        return
    logging.basicConfig(level=logging.ERROR)
    from exporter.fd_budget import raise_open_file_limit

    raise_open_file_limit()
    if not args.glibc_arenas:
        from exporter.malloc_arenas import limit_malloc_arenas

        limit_malloc_arenas()  # as the exporter does at start (run, demo)
    # spawn: the simulator's process shares none of this one's pages, and this one imports nothing of it.
    spawn = multiprocessing.get_context("spawn")
    answers, stop = spawn.Queue(), spawn.Event()
    child = spawn.Process(target=run_simulator, daemon=True, args=(args.hosts, answers, stop))
    child.start()
    control_url, hosts = answers.get(timeout=600)
    try:
        if args.latency_ms:
            for host in hosts:
                control(control_url, "/control/faults", {"host": host, "fault": "latency",
                                                      "latency_ms": args.latency_ms}, "POST")
        from collectors import registry
        from collectors.contract import FactsBoard
        from collectors.sources.remoting import SessionPool
        from exporter.config import load_config
        from exporter.scheduler import JobRunner
        from exporter.state import SnapshotStore

        started = figures()
        show("started", started)
        if args.tracemalloc:
            tracemalloc.start()
        before_jobs = tracemalloc.take_snapshot() if args.tracemalloc else None
        document = bench_config(hosts, "basic", USERNAME, args.workers)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.yaml"
            path.write_text(yaml.safe_dump(document))
            config = load_config(path, registry.by_name(), environ={"BENCH_PASSWORD": PASSWORD})
        collectors = registry.by_name()
        instances = {name: cls() for name, cls in collectors.items()}
        store, sessions, facts = SnapshotStore(), SessionPool(), FactsBoard()
        runners = [JobRunner(instances[job.collector], job, store, sessions, config.global_, facts)
                   for job in config.jobs(collectors)]
        share_as_the_scheduler_does(runners)
        gc.collect()
        built = figures()
        base = tracemalloc.take_snapshot() if args.tracemalloc else None
        show(f"jobs built ({len(runners)})", built)
        print(f"{'':<22} configuration and jobs: {(built['rss'] - started['rss']) * 1024 / args.hosts:.1f} kB "
              f"of RSS a host", flush=True)
        if args.tracemalloc:
            print_tracemalloc(base, before_jobs, args.hosts, args.top, "configuration and jobs")
        last = built
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for cycle in range(args.cycles):
                cpu, started = cpu_seconds(), time.perf_counter()
                list(pool.map(lambda r: r(), runners))
                took, cpu = time.perf_counter() - started, cpu_seconds() - cpu
                up = sum(1 for job in store.jobs() if job.up)
                last = figures()
                show(f"cycle {cycle + 1}", last)
                print(f"{'':<22} {took:.1f}s, exporter CPU {cpu:.1f}s, {up}/{len(runners)} jobs up", flush=True)
        gc.collect()
        show("after gc.collect()", figures())
        from collectors.sources.response_cap import trim_heap

        trim_cpu = time.process_time()
        if trim_heap():  # what glibc keeps free in its arenas, and could give back
            trim_cpu = time.process_time() - trim_cpu
            show("after malloc_trim(0)", figures())
            print(f"{'':<22} malloc_trim(0) took {1000 * trim_cpu:.1f} ms of CPU", flush=True)
        print("per host (kB): " + " ".join(
            f"{key}={(last[key] - built[key]) * 1024 / args.hosts:.1f}"
            for key in ("rss", "anon", "heap_used", "heap_free", "py_blocks_k") if key in last))
        if args.tracemalloc:
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            print_tracemalloc(snapshot, base, args.hosts, args.top, "polling")
        print("\nlargest object types (shallow sizes, MB):")
        for name, size in type_sizes().most_common(args.top):
            print(f"  {size / 2**20:8.2f}  {name}")
        sessions.close_all()
    finally:
        stop.set()
        child.join(30)


if __name__ == "__main__":
    main()
