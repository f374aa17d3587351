"""How long a good (not yet cached) login takes while 150 clients guess passwords as fast as they can.

    .venv/bin/python benchmarks/bench_basic_auth_flood.py                      # 150 guessers, one address
    .venv/bin/python benchmarks/bench_basic_auth_flood.py --guesser-addresses 150   # one address each

The exporter's HTTP server runs in a child process with basic authentication for ``--users`` users
(bcrypt cost ``--cost``, 10 as ``htpasswd -nBC 10`` writes). An attacker process runs ``--guessers``
threads, each sending requests with a wrong password on a kept-alive connection, in a loop, from
``--guesser-addresses`` loopback addresses (127.0.1.x). Once the flood runs, the good client (from
127.0.0.2: Prometheus is another host) logs in once as each user in turn: every one of these logins
is a first one, so bcrypt runs for it (a success is cached afterwards). Printed: each good login's
time, their median and maximum (target: under Prometheus' default 10 s scrape timeout), and how
many guesses the server answered meanwhile. The child inherits PYTHONPATH, so the same command
measures another tree (an older release).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def header(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def serve(folder: str) -> None:
    from exporter.http import ExporterHTTPServer
    from exporter.metrics import ExpositionCache
    from exporter.state import SnapshotStore
    from exporter.web_config import load_web_config

    store = SnapshotStore()
    cache = ExpositionCache(store, [], process_metrics=False)
    cache.start()
    server = ExporterHTTPServer(("127.0.0.1", 0), cache, store, healthy=lambda: True,
                                web_config=load_web_config(Path(folder) / "web.yml"))
    server.serve_in_thread()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.shutdown()
    server.server_close()
    cache.stop()


def guess(port: int, guessers: int, addresses: int) -> None:
    stop = threading.Event()
    answered = [0] * guessers

    def loop(n: int) -> None:
        source = (f"127.0.1.{1 + n % addresses}", 0)
        conn = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=source)
                conn.request("GET", "/metrics", headers=header("prometheus", f"guess-{n}"))
                conn.getresponse().read()
                answered[n] += 1
            except OSError:
                conn = None
                time.sleep(0.05)

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(guessers)]
    for thread in threads:
        thread.start()
    sys.stdin.read()
    stop.set()
    print(sum(answered), flush=True)
    os._exit(0)  # the guessers may be blocked in a read: do not wait for them


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guessers", type=int, default=150)
    parser.add_argument("--guesser-addresses", type=int, default=1)
    parser.add_argument("--users", type=int, default=8, help="good logins measured, one per user")
    parser.add_argument("--cost", type=int, default=10)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--guess", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    if args.guess:
        return guess(args.guess, args.guessers, args.guesser_addresses)

    import bcrypt

    users = {f"user{n}": f"password-{n}" for n in range(args.users)}
    sample = bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=args.cost))
    started = time.perf_counter()
    for _ in range(3):
        bcrypt.checkpw(b"y", sample)
    one_check = (time.perf_counter() - started) / 3  # on this machine, now: the unit of every figure below
    with tempfile.TemporaryDirectory() as folder:
        lines = ["basic_auth_users:"] + [
            f"  {user}: {bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=args.cost)).decode()}"
            for user, pw in users.items()]
        (Path(folder) / "web.yml").write_text("\n".join(lines) + "\n")
        server = subprocess.Popen([sys.executable, __file__, "--serve", folder], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        attacker = None
        try:
            port = int(server.stdout.readline())
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--guess", str(port), "--guessers", str(args.guessers),
                 "--guesser-addresses", str(args.guesser_addresses)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            time.sleep(5.0)  # every guesser has a request in the queue
            times = []
            for user, password in users.items():
                started = time.perf_counter()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=("127.0.0.2", 0))
                conn.request("GET", "/metrics", headers=header(user, password))
                status = conn.getresponse().status
                conn.close()
                times.append(time.perf_counter() - started)
                print(f"{user}: HTTP {status} in {times[-1]:.2f} s", flush=True)
            attacker.stdin.close()
            answered = attacker.stdout.read().strip()
        finally:
            if attacker is not None and attacker.poll() is None:
                attacker.kill()
            server.stdin.close()
            server.wait(30)
    print(f"guessers={args.guessers} from {args.guesser_addresses} address(es), cost {args.cost}: good first login "
          f"median {statistics.median(times):.2f} s, max {max(times):.2f} s (target < 10 s); "
          f"{answered} guesses answered meanwhile; one bcrypt check takes {one_check * 1e3:.0f} ms here")


if __name__ == "__main__":
    main()
