"""A good scraper's latency while a slowloris holds 1,000 connections to the exporter's endpoint.

    .venv/bin/python benchmarks/bench_slowloris.py                        # 1,000 connections, 20 s + 20 s
    .venv/bin/python benchmarks/bench_slowloris.py --connections 600 --seconds 10 --tls
    .venv/bin/python benchmarks/bench_slowloris.py --connections 500 --scrapers   # 500 eager scrapers

The exporter's HTTP server (``exporter.http.ExporterHTTPServer``, default limits) runs in a child
process with ``--series`` synthetic series, so threads and file descriptors are the server's alone
(read from ``/proc``). Two phases of ``--seconds`` each:

1. **Idle**: one good client scrapes ``/metrics`` every ``--every`` seconds on a fresh connection
   (the worst case: every scrape has to get through accept), as the soak's scraper does.
2. **Attack**: the same, while an attacker keeps ``--connections`` connections open the way the
   slowloris tool does: each sends a partial request head, then one more header line every
   ``--trickle`` seconds, and connections the server closed are opened again at the next round.

Printed: the good client's p50/p99/max and failures per phase, the p99 ratio (target: at most 2),
and the server's threads and open file descriptors, lowest and highest per phase (target: flat).
The child inherits PYTHONPATH, so the same command measures another tree (an older release).
"""

from __future__ import annotations

import argparse
import http.client
import os
import selectors
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PARTIAL_HEAD = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nUser-Agent: slowloris\r\n"


# --- the server, in its own process ---------------------------------------------------------------------


def serve(series: int, tls_folder: str | None) -> None:
    from collectors.contract import MetricSpec
    from exporter.http import ExporterHTTPServer
    from exporter.metrics import ExpositionCache
    from exporter.state import SnapshotStore

    spec = MetricSpec("lync_owa_bench_value", "gauge", "Synthetic series.", ("replica",))
    store = SnapshotStore()
    per_job = max(1, series // 20)
    for j in range(20):
        store.register("bench", f"host{j:02d}", 60)
        store.record_success("bench", f"host{j:02d}", [spec.sample(i, replica=f"r{i}") for i in range(per_job)], 0.01)
    cache = ExpositionCache(store, [spec], process_metrics=False)
    cache.start()
    web_config = None
    if tls_folder:
        from exporter.web_config import load_web_config

        web_config = load_web_config(Path(tls_folder) / "web.yml")
    server = ExporterHTTPServer(("127.0.0.1", 0), cache, store, healthy=lambda: True, web_config=web_config)
    server.serve_in_thread()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.shutdown()
    server.server_close()
    cache.stop()


def write_tls_material(folder: Path) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "web.yml").write_text("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")


# --- measuring -------------------------------------------------------------------------------------------


def process_figures(pid: int) -> tuple[int, int]:
    """(threads, open file descriptors) of a process, from /proc."""
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


class Scraper(threading.Thread):
    def __init__(self, port: int, every: float, context: ssl.SSLContext | None, source: str) -> None:
        super().__init__(daemon=True)
        self.port, self.every, self.context, self.source = port, every, context, (source, 0)
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            started = time.perf_counter()
            try:
                if self.context is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=self.source)
                else:
                    conn = http.client.HTTPSConnection("localhost", self.port, timeout=10, context=self.context,
                                                       source_address=self.source)
                conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status != 200 or not body:
                    self.failures.append(f"HTTP {response.status}")
                    continue
            except OSError as exc:
                self.failures.append(type(exc).__name__)
                continue
            self.latencies.append(time.perf_counter() - started)


class Slowloris:
    """Keeps ``count`` connections sending a request head a line at a time, reopening closed ones.
    Runs in its own process (``--attack``), so it never competes with the scraper for a lock."""

    def __init__(self, port: int, count: int, trickle: float, tls: bool, source: str | None = None) -> None:
        self.port, self.count, self.trickle, self.tls = port, count, trickle, tls
        # Its own address, as an attacker on the network has (the endpoint shares its slots by address).
        self.source = (source, 0) if source else None
        self.stop = threading.Event()
        self.opened = self.reopened = 0
        self._selector = selectors.DefaultSelector()

    def _open(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5, source_address=self.source)
            # Over TLS the attacker stalls in the handshake: a partial ClientHello, the cheapest attack there.
            sock.sendall(b"\x16\x03\x01\x00" if self.tls else PARTIAL_HEAD)
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
            self.opened += 1
        except OSError:
            pass

    def run(self) -> None:
        for _ in range(self.count):
            if self.stop.is_set():
                break
            self._open()
        n = 0
        while not self.stop.is_set():
            round_ends = time.monotonic() + self.trickle
            while (left := round_ends - time.monotonic()) > 0 and not self.stop.is_set():
                for key, _ in self._selector.select(min(left, 0.5)):
                    self._drop(key.fileobj)  # the server answered (408) or closed it
            n += 1
            for key in list(self._selector.get_map().values()):
                try:
                    key.fileobj.send(b"" if self.tls else f"X-Round-{n}: {n}\r\n".encode())
                except OSError:
                    self._drop(key.fileobj)
            for _ in range(self.count - len(self._selector.get_map())):
                if self.stop.is_set():
                    break
                self._open()
                self.reopened += 1
        for key in list(self._selector.get_map().values()):
            self._drop(key.fileobj)

    def _drop(self, sock) -> None:
        self._selector.unregister(sock)
        sock.close()


class Scrapers:
    """``count`` clients scraping as fast as they can, each on a fresh connection (``--scrapers``)."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.opened = self.reopened = 0  # here: answered, failed

    def run(self) -> None:
        lock = threading.Lock()

        def loop() -> None:
            while not self.stop.is_set():
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    conn.request("GET", "/metrics")
                    ok = conn.getresponse().read() != b""
                    conn.close()
                except OSError:
                    ok = False
                with lock:
                    if ok:
                        self.opened += 1
                    else:
                        self.reopened += 1

        threads = [threading.Thread(target=loop, daemon=True) for _ in range(self.count)]
        for thread in threads:
            thread.start()
        self.stop.wait()


def attack(port: int, count: int, trickle: float, tls: bool, scrapers: bool, source: str | None = None) -> None:
    attacker = Scrapers(port, count) if scrapers else Slowloris(port, count, trickle, tls, source)
    threading.Thread(target=lambda: (sys.stdin.read(), attacker.stop.set()), daemon=True).start()
    attacker.run()
    print(attacker.opened, attacker.reopened, flush=True)
    os._exit(0)  # scrapers may be blocked in a read: do not wait for them


def phase(name: str, pid: int, port: int, args, context, with_attack: bool) -> dict:
    attacker = None
    if with_attack:
        attacker = subprocess.Popen(
            [sys.executable, __file__, "--attack", "--port", str(port), "--connections", str(args.connections),
             "--trickle", str(args.trickle)] + (["--tls"] if args.tls else []) + (["--scrapers"] if args.scrapers else [])
            + (["--attacker-address", args.attacker_address] if args.attacker_address else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=(lambda: os.nice(args.attacker_nice)) if args.attacker_nice else None)
        time.sleep(3.0)  # the flood is in place before the scrapes are counted
    scraper = Scraper(port, args.every, context, args.scraper_address)
    scraper.start()
    threads, fds = [], []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        t, f = process_figures(pid)
        threads.append(t)
        fds.append(f)
        time.sleep(0.5)
    scraper.stop.set()
    scraper.join()
    opened = ""
    if attacker:
        attacker.stdin.close()
        opened = attacker.stdout.read().split()
        attacker.wait(30)
    lat = sorted(scraper.latencies)
    # Inclusive: with fewer than 100 scrapes the default method extrapolates a p99 above the max.
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [float("nan")] * 99
    result = {"p50": q[49] * 1e3, "p95": q[94] * 1e3, "p99": q[98] * 1e3, "max": lat[-1] * 1e3 if lat else float("nan"),
              "scrapes": len(lat), "failures": len(scraper.failures), "threads": (min(threads), max(threads)),
              "fds": (min(fds), max(fds))}
    extra = ""
    if opened:
        words = ("scrapes answered", "failed") if args.scrapers else ("connections opened", "of them reopened")
        extra = f" attacker: {opened[0]} {words[0]} ({opened[1]} {words[1]})"
    print(f"{name:>6}: scrapes={result['scrapes']} failures={result['failures']} "
          f"{sorted(set(scraper.failures))[:3] if scraper.failures else ''}"
          f"p50={result['p50']:.2f} ms p95={result['p95']:.2f} ms p99={result['p99']:.2f} ms max={result['max']:.2f} ms "
          f"threads={result['threads'][0]}..{result['threads'][1]} fds={result['fds'][0]}..{result['fds'][1]}{extra}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--every", type=float, default=0.1, help="seconds between two good scrapes")
    parser.add_argument("--trickle", type=float, default=5.0, help="seconds between two header lines")
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--tls", action="store_true", help="serve HTTPS; the attacker stalls in the handshake")
    parser.add_argument("--scraper-address", default="127.0.0.2",
                        help="the good client's source address: Prometheus is another host than the attacker")
    parser.add_argument("--attacker-nice", type=int, default=0,
                        help="run the attacker at this nice level: it stands for a remote host, whose CPU is not ours")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scrapers", action="store_true",
                        help="instead of a slowloris, --connections clients scrape /metrics as fast as they can")
    parser.add_argument("--attack", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tls-folder", help=argparse.SUPPRESS)
    parser.add_argument("--attacker-address", help="the slowloris's source address (default: the system's choice)")
    args = parser.parse_args()
    if args.serve:
        return serve(args.series, args.tls_folder)
    if args.attack:
        return attack(args.port, args.connections, args.trickle, args.tls, args.scrapers, args.attacker_address)

    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, __file__, "--serve", "--series", str(args.series)]
        context = None
        if args.tls:
            write_tls_material(Path(folder))
            command += ["--tls-folder", folder]
            context = ssl.create_default_context(cafile=str(Path(folder) / "cert.pem"))
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            port = int(child.stdout.readline())
            print(f"server pid={child.pid} port={port} series={args.series} tls={args.tls} "
                  f"slowloris={args.connections} connections, a header line every {args.trickle:g} s")
            idle = phase("idle", child.pid, port, args, context, with_attack=False)
            time.sleep(1.0)
            attacked = phase("attack", child.pid, port, args, context, with_attack=True)
        finally:
            child.stdin.close()
            child.wait(10)
    ratio = attacked['p99'] / idle['p99']
    print(f"p99 under attack / idle p99 = {ratio:.2f} (target <= 2: {'met' if ratio <= 2 else 'missed'}); "
          f"threads {idle['threads'][1]} -> {attacked['threads'][1]} "
          f"({'flat' if attacked['threads'][1] <= idle['threads'][1] else 'grew'}), "
          f"fds {idle['fds'][1]} -> {attacked['fds'][1]} (held connections cost one each, up to the cap)")


if __name__ == "__main__":
    main()
