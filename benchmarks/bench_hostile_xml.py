"""What an XML bomb in a remote answer costs: RSS of the exporter's remoting under a hostile host.

    .venv/bin/python benchmarks/bench_hostile_xml.py [--seconds 30] [--threads 4]

A loopback HTTP server answers every WSMan request with the same few hundred bytes: a SOAP envelope
whose DTD declares nested entities ("billion laughs") expanding to about 8 MB, just under expat's
own amplification guard (which only starts after 8 MiB of output). ``--threads`` threads run
``Get-CsSite`` through the real ``RemoteSession`` (real pypsrp client) against it for ``--seconds``,
as the scheduler's workers would against one hostile host, in two child processes: one with the
exporter's bounded parsing (``collectors.sources.pypsrp_parsing``), one with pypsrp's own
``ElementTree.fromstring`` put back. Printed per mode: runs, how they failed, RSS at start, peak RSS
(the kernel's high-water mark) and RSS at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SOAP = "http://www.w3.org/2003/05/soap-envelope"


def bomb(levels: int = 6, fan: int = 6, width: int = 170) -> bytes:
    entities = ['<!ENTITY a0 "' + "x" * width + '">']
    entities += [f'<!ENTITY a{i} "' + f"&a{i - 1};" * fan + '">' for i in range(1, levels + 1)]
    return (f"<!DOCTYPE s:Envelope [{''.join(entities)}]>"
            f'<s:Envelope xmlns:s="{SOAP}"><s:Header/><s:Body>&a{levels};</s:Body></s:Envelope>').encode()


class BombHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = bomb()

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(mode: str, seconds: float, threads: int) -> dict:
    from collectors.contract import CollectError, Deadline, Shape
    from collectors.sources import pypsrp_parsing
    from collectors.sources.remoting import EndpointSpec, RemoteSession

    if mode == "unbounded":
        pypsrp_parsing.uninstall()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BombHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = EndpointSpec(url=f"http://127.0.0.1:{server.server_address[1]}/wsman", configuration="Microsoft.PowerShell",
                        username="monitor", password="bench-password", auth="basic", encryption="never")
    start_rss = rss_mb()
    outcomes: Counter = Counter()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker() -> None:
        session = RemoteSession(spec)
        while time.monotonic() < end:
            try:
                session.run("Get-CsSite", None, Shape("Get-CsSite"), Deadline(10))
                outcome = "succeeded"
            except CollectError as exc:
                outcome = f"{exc.kind.value}: {str(exc).split(': ', 1)[1][:60]}"
            with lock:
                outcomes[outcome] += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    server.shutdown()
    return {"mode": mode, "runs": sum(outcomes.values()), "outcomes": dict(outcomes), "start_mb": round(start_rss, 1),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "end_mb": round(rss_mb(), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--mode", choices=("bounded", "unbounded"), help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(measure(args.mode, args.seconds, args.threads)))
        return 0
    print(f"answer: {len(bomb())} bytes, expanding to {170 * 6**6 / 1e6:.1f} MB of text")
    for mode in ("unbounded", "bounded"):
        child = subprocess.run([sys.executable, __file__, "--mode", mode, "--seconds", str(args.seconds),
                                "--threads", str(args.threads)], capture_output=True, text=True, check=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{mode:9}: {result['runs']} runs in {args.seconds:g}s with {args.threads} threads; RSS "
              f"{result['start_mb']} MB at start, peak {result['peak_mb']} MB, {result['end_mb']} MB at the end; "
              f"{result['outcomes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
