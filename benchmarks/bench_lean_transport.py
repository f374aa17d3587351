"""CPU per WSMan request: the exporter's remoting path (pypsrp 0.9 + requests) beside a lean prototype client.

    .venv/bin/python benchmarks/bench_lean_transport.py [--rounds 100] [--repeat 3] [--hosts 20]
        [--sections requests objects concurrent]

The simulator runs in a child process (the healthy scenario scaled to ``--hosts``, no added latency,
Basic authentication over plain HTTP, as ``bench_poll_cycle.py`` starts it). Every variant opens its
runspace pool first (not timed), then runs ``--rounds`` rounds of the Exchange collectors' cmdlets on
it: Get-ServerComponentState -Identity (server_maintenance), Get-OwaVirtualDirectory -Server
-ShowMailboxVirtualDirectories (owa_im_settings), Get-ExchangeCertificate -Server (im_certificate).
Reported per variant, as the minimum over ``--repeat`` measurements: the client's CPU time
(``time.process_time`` of this process, which runs no simulator) per WSMan request, the simulator's CPU
per request (from /proc of its process), and the wall time per request.

Variants (``lean_wsman.py``, ``lean_clixml.py``):
- ``pypsrp``: the exporter's own path, ``collectors.sources.remoting.RemoteSession.run`` (pypsrp,
  requests, bounded parsing, ``normalize.convert_all``);
- ``lean/<http>/<clixml>``: psrpcore for PSRP, envelopes from byte templates, expat on the answers, one
  persistent connection (``http.client`` or a socket with hand-written HTTP framing), and the CLIXML
  turned into plain values by a direct ElementTree walk (``walk``) or by psrpcore's deserializer
  (``psrpcore``);
- concurrent: ``--hosts``' Exchange servers at once, one thread each (pypsrp, and lean/socket/walk), and
  all of them on one asyncio thread (lean/asyncio/walk).

The ``objects`` section times the CLIXML-to-plain-values step alone, per output object of one round:
pypsrp's deserializer + ``normalize.to_plain``, psrpcore's deserializer + conversion, the direct walk.

Before timing, every lean variant's answers are compared with the pypsrp path's for each cmdlet (the
normalised dicts, their ToString texts included); a difference stops the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_poll_cycle import PASSWORD, USERNAME, control, cpu_seconds, run_simulator  # noqa: E402
from lean_http import AsyncTransport, HttpClientTransport, SocketTransport, basic_header  # noqa: E402
from lean_wsman import LeanSession, drive, drive_async  # noqa: E402

from collectors.contract import Deadline  # noqa: E402
from collectors.im_certificate.answers import EXCHANGE_CERTIFICATE  # noqa: E402
from collectors.owa_im_settings import VIRTUAL_DIRECTORY  # noqa: E402
from collectors.server_maintenance import COMPONENT_STATE  # noqa: E402
from collectors.sources.remoting import EndpointSpec, RemoteSession  # noqa: E402

EXCHANGE_CONFIGURATION = "Microsoft.Exchange"


def cmdlets(server: str) -> list[tuple[str, dict[str, Any], Any]]:
    """The Exchange collectors' calls on ``server``, with the shapes they declare."""
    return [("Get-ServerComponentState", {"Identity": server}, COMPONENT_STATE),
            ("Get-OwaVirtualDirectory", {"Server": server, "ShowMailboxVirtualDirectories": True}, VIRTUAL_DIRECTORY),
            ("Get-ExchangeCertificate", {"Server": server}, EXCHANGE_CERTIFICATE)]


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two normalised answers differ (types, values, and the ToString of objects)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{key}: only on one side" for key in set(a) ^ set(b)]
        for key in set(a) & set(b):
            found += differences(a[key], b[key], f"{path}.{key}")
        if getattr(a, "text", None) != getattr(b, "text", None):
            found.append(f"{path}: ToString {getattr(a, 'text', None)!r:.60} != {getattr(b, 'text', None)!r:.60}")
        return found
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} != {type(b).__name__}"]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r:.60} != {b!r:.60}"]


# --------------------------------------------------------------------------- one host, one thread

class PypsrpClient:
    """The exporter's path: RemoteSession.run, as a collector's ctx.run calls it."""

    name = "pypsrp"

    def __init__(self, host: dict[str, Any]) -> None:
        spec = EndpointSpec(url=host["exchange_url"], configuration=EXCHANGE_CONFIGURATION, username=USERNAME,
                            password=PASSWORD, auth="basic", encryption="never")
        self.session = RemoteSession(spec)
        self.server = host["name"]

    def call(self, cmdlet: str, parameters: dict[str, Any], shape: Any) -> list[dict[str, Any]]:
        return self.session.run(cmdlet, parameters, shape, Deadline(30)).objects

    def close(self) -> None:
        self.session.close()


class LeanClient:
    """The prototype on a blocking transport (``http.client`` or the socket framing)."""

    def __init__(self, host: dict[str, Any], transport: str, clixml: str) -> None:
        url = urllib.parse.urlsplit(host["exchange_url"])
        kind = {"http.client": HttpClientTransport, "socket": SocketTransport}[transport]
        self.transport = kind(url.hostname, url.port, url.path, basic_header(USERNAME, PASSWORD))
        self.session = LeanSession(host["exchange_url"], EXCHANGE_CONFIGURATION, direct=clixml == "walk")
        self.name = f"lean/{transport}/{clixml}"
        self.server = host["name"]
        drive(self.session, self.session.open(), self.transport.post)

    def call(self, cmdlet: str, parameters: dict[str, Any], shape: Any) -> list[dict[str, Any]]:
        return drive(self.session, self.session.run(cmdlet, parameters, shape), self.transport.post)

    def close(self) -> None:
        drive(self.session, self.session.close(), self.transport.post)
        self.transport.close()


def one_round(client: Any) -> None:
    for cmdlet, parameters, shape in cmdlets(client.server):
        client.call(cmdlet, parameters, shape)


# --------------------------------------------------------------------------- measuring

class Meter:
    """Client CPU, simulator CPU, wall time and WSMan requests (the simulator's own count) of a block."""

    def __init__(self, control_url: str, sim_pid: int) -> None:
        self.control_url, self.sim_pid = control_url, sim_pid

    def requests(self) -> int:
        return sum(h["requests"] for h in control(self.control_url, "/control/stats").values())

    def measure(self, work: Callable[[], None]) -> dict[str, float]:
        gc.collect()
        served = self.requests()
        cpu, sim_cpu, wall = time.process_time(), cpu_seconds(self.sim_pid), time.perf_counter()
        work()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        sim_cpu = cpu_seconds(self.sim_pid) - sim_cpu
        served = self.requests() - served
        return {"requests": served, "cpu_ms": 1000 * cpu / served, "sim_cpu_ms": 1000 * sim_cpu / served,
                "wall_ms": 1000 * wall / served}


def best(meter: Meter, work: Callable[[], None], repeat: int) -> dict[str, float]:
    """The measurement with the least client CPU per request, of ``repeat``."""
    return min((meter.measure(work) for _ in range(repeat)), key=lambda m: m["cpu_ms"])


def report(name: str, result: dict[str, float], baseline: float | None, checked: bool = False) -> None:
    ratio = f"{baseline / result['cpu_ms']:>6.1f}x" if baseline else f"{'1.0x':>7}"
    print(f"{name:<28} {result['requests']:>8} {result['cpu_ms']:>12.3f} {ratio} {result['sim_cpu_ms']:>14.3f} "
          f"{result['wall_ms']:>10.3f}{'   answers equal to pypsrp' if checked else ''}", flush=True)


def check_same_answers(reference: PypsrpClient, client: Any) -> None:
    for cmdlet, parameters, shape in cmdlets(reference.server):
        expected = reference.call(cmdlet, parameters, shape)
        got = client.call(cmdlet, parameters, shape)
        found = differences(expected, got)
        if found:
            raise SystemExit(f"{client.name} answers {cmdlet} differently from pypsrp: {found[:5]}")


def concurrent_threads(clients: list[Any], rounds: int) -> Callable[[], None]:
    def work() -> None:
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            list(pool.map(lambda c: [one_round(c) for _ in range(rounds)], clients))
    return work


async def _async_host(host: dict[str, Any], rounds: int, opened: list, ready: asyncio.Event) -> None:
    """One host on the shared event loop: open its pool, wait for the start, run its rounds."""
    url = urllib.parse.urlsplit(host["exchange_url"])
    transport = AsyncTransport(url.hostname, url.port, url.path, basic_header(USERNAME, PASSWORD))
    session = LeanSession(host["exchange_url"], EXCHANGE_CONFIGURATION, direct=True)
    await drive_async(session, session.open(), transport)
    opened.append((session, transport))
    await ready.wait()
    for _ in range(rounds):
        for cmdlet, parameters, shape in cmdlets(host["name"]):
            await drive_async(session, session.run(cmdlet, parameters, shape), transport)


def asyncio_variant(meter: Meter, hosts: list[dict[str, Any]], rounds: int, repeat: int) -> dict[str, float]:
    """Every host's pool opened (not timed), then all hosts' rounds in flight on one event loop."""
    results = []
    for _ in range(repeat):
        loop = asyncio.new_event_loop()
        ready = asyncio.Event()
        opened: list = []

        async def open_all() -> list[asyncio.Task]:
            tasks = [asyncio.create_task(_async_host(h, rounds, opened, ready)) for h in hosts]
            while len(opened) < len(hosts):
                failed = [t for t in tasks if t.done()]
                if failed:
                    failed[0].result()  # raises what went wrong
                await asyncio.sleep(0.01)
            return tasks

        tasks = loop.run_until_complete(open_all())

        async def run_all() -> None:
            ready.set()
            await asyncio.gather(*tasks)

        results.append(meter.measure(lambda: loop.run_until_complete(run_all())))
        for session, transport in opened:
            loop.run_until_complete(drive_async(session, session.close(), transport))
            transport.close()
        loop.close()
    return min(results, key=lambda m: m["cpu_ms"])


def per_object(host: dict[str, Any], repeat: int) -> None:
    """CPU per output object of the three ways to make plain values of CLIXML, on the answers of one round."""
    from xml.etree import ElementTree

    from lean_clixml import psrpcore_plain, walk_output
    from psrpcore import PSRemotingCrypto
    from psrpcore.types import deserialize
    from pypsrp.serializer import Serializer

    from collectors.sources.normalize import to_plain

    client = LeanClient(host, "socket", "walk")
    client.session.pool.recorded = recorded = []
    one_round(client)
    client.close()
    serializer, cipher = Serializer(), PSRemotingCrypto()
    ways = {  # pypsrp's path as the exporter runs it: bounded parsing installed by collectors.sources.remoting
        "pypsrp deserialize + normalize.to_plain": lambda d: to_plain(serializer.deserialize(d.decode())),
        "psrpcore deserialize + psrpcore_plain": lambda d: psrpcore_plain(deserialize(ElementTree.fromstring(d),
                                                                                       cipher)),
        "direct walk (walk_output)": walk_output,
    }
    size = sum(map(len, recorded)) / len(recorded)
    print(f"\n{'CLIXML -> plain values':<40} {'CPU ms per object':>17}   ({len(recorded)} objects of one round, "
          f"{size / 1024:.1f} KiB each on average)")
    for name, convert in ways.items():
        times = []
        for _ in range(repeat):
            started = time.process_time()
            for _ in range(20):
                for data in recorded:
                    convert(data)
            times.append((time.process_time() - started) / (20 * len(recorded)))
        print(f"{name:<40} {1000 * min(times):>17.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="rounds of the three cmdlets per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per variant; the least CPU counts")
    parser.add_argument("--hosts", type=int, default=20, help="simulated hosts; their Exchange servers poll at once")
    parser.add_argument("--sections", nargs="+", choices=("requests", "objects", "concurrent"),
                        default=["requests", "objects", "concurrent"])
    args = parser.parse_args()

    answers: multiprocessing.Queue = multiprocessing.Queue()
    stop = multiprocessing.Event()
    child = multiprocessing.Process(target=run_simulator, args=(args.hosts, answers, stop), daemon=True)
    child.start()
    control_url, hosts = answers.get(timeout=300)
    try:
        exchange = [dict(info, name=name) for name, info in hosts.items() if info["exchange_url"]]
        meter = Meter(control_url, child.pid)
        print(f"simulator: {len(hosts)} hosts ({len(exchange)} Exchange), healthy, no added latency, Basic over "
              f"HTTP; {args.rounds} rounds x 3 cmdlets per measurement, best of {args.repeat}", flush=True)
        if "requests" in args.sections:
            single_host(meter, exchange[0], args.rounds, args.repeat)
        if "objects" in args.sections:
            per_object(exchange[0], args.repeat)
        if "concurrent" in args.sections:
            concurrent(meter, exchange, args.rounds, args.repeat)
        print(f"\nthreads alive at the end: {threading.active_count()}")
    finally:
        stop.set()
        child.join(30)


def single_host(meter: Meter, host: dict[str, Any], rounds: int, repeat: int) -> None:
    """One Exchange server, one thread: pypsrp, then every lean variant (each checked against pypsrp first)."""
    reference = PypsrpClient(host)
    one_round(reference)  # opens its pool
    print(f"\n{'one host, one thread':<28} {'requests':>8} {'client CPU ms':>12} {'cut':>7} "
          f"{'simulator CPU ms':>14} {'wall ms':>10}   (per WSMan request)")
    base = best(meter, lambda: [one_round(reference) for _ in range(rounds)], repeat)
    report(reference.name, base, None)
    for transport, clixml in (("http.client", "walk"), ("socket", "walk"), ("socket", "psrpcore"),
                              ("http.client", "psrpcore")):
        client = LeanClient(host, transport, clixml)  # opened just before: the server drops idle connections
        check_same_answers(reference, client)
        report(client.name, best(meter, lambda: [one_round(client) for _ in range(rounds)], repeat),
               base["cpu_ms"], checked=True)
        client.close()
    reference.close()


def concurrent(meter: Meter, exchange: list[dict[str, Any]], rounds: int, repeat: int) -> None:
    """Every Exchange server at once: a thread each (pypsrp, lean), then one asyncio thread (lean)."""
    rounds = max(rounds // len(exchange), 1)
    print(f"\n{f'{len(exchange)} hosts at once':<28} {'requests':>8} {'client CPU ms':>12} {'cut':>7} "
          f"{'simulator CPU ms':>14} {'wall ms':>10}   ({rounds} rounds per host)")
    threaded: list[Any] = [PypsrpClient(h) for h in exchange]
    for client in threaded:
        one_round(client)
    base = best(meter, concurrent_threads(threaded, rounds), repeat)
    report(f"pypsrp, {len(exchange)} threads", base, None)
    for client in threaded:
        client.close()
    threaded = [LeanClient(h, "socket", "walk") for h in exchange]
    report(f"lean/socket/walk, {len(exchange)} threads", best(meter, concurrent_threads(threaded, rounds), repeat),
           base["cpu_ms"])
    for client in threaded:
        client.close()
    report("lean/asyncio/walk, 1 thread", asyncio_variant(meter, exchange, rounds, repeat), base["cpu_ms"])


if __name__ == "__main__":
    main()
