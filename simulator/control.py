"""The JSON control API of a running simulator (loopback, no auth): scenario, faults, stats.

GET    /control/state                      scenario, scenarios, hosts (roles, ports, urls, faults)
POST   /control/scenario  {"name": ...}    switch the scenario live
POST   /control/faults    {"host", "fault", optional "latency_ms", "open_latency_ms", "cmdlet", "output"}
DELETE /control/faults[?host=H]            clear every fault, or one host's
GET    /control/stats                      per-host counters
Bad requests get 400 and {"error": "..."} naming what is wrong.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from simulator.faults import FaultError
from simulator.scenario import ScenarioError

if TYPE_CHECKING:  # pragma: no cover
    from simulator.server import Simulator

log = logging.getLogger(__name__)
_MAX_BODY = 64 * 1024


class ControlError(ValueError):
    """A control request naming something that does not exist (unknown host...)."""


class ControlServer:
    def __init__(self, simulator: Simulator, host: str, port: int) -> None:
        handler = type("BoundControlHandler", (_ControlHandler,), {"simulator": simulator})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sim-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # shutdown() waits for serve_forever to notice; if start() never ran it would wait forever.
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5.0)
        self._server.server_close()


class _ControlHandler(BaseHTTPRequestHandler):
    simulator: Simulator
    server_version = "lync-owa-simulator"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("control %s", format % args)

    def _reply(self, status: int, document: Any) -> None:
        body = json.dumps(document, indent=2, sort_keys=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ControlError("request body too large")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            document = json.loads(raw or b"{}")
        except ValueError:
            raise ControlError("the body must be JSON") from None
        if not isinstance(document, dict):
            raise ControlError("the body must be a JSON object")
        return document

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        route = (method, parts.path.rstrip("/"))
        try:
            if route == ("GET", "/control/state"):
                self._reply(200, self.simulator.state())
            elif route == ("GET", "/control/stats"):
                self._reply(200, self.simulator.stats())
            elif route == ("POST", "/control/scenario"):
                name = self._json_body().get("name")
                if not isinstance(name, str) or not name:
                    raise ControlError('"name" (a scenario name) is required')
                self.simulator.set_scenario(name)
                self._reply(200, {"scenario": self.simulator.scenario_name})
            elif route == ("POST", "/control/faults"):
                document = self._json_body()
                host, fault = document.pop("host", None), document.pop("fault", None)
                if not isinstance(host, str) or not isinstance(fault, str):
                    raise ControlError('"host" and "fault" are required strings')
                self.simulator.set_fault(host, fault, **document)
                self._reply(200, {"host": host, "faults": self.simulator.state()["hosts"][host]["faults"]})
            elif route == ("DELETE", "/control/faults"):
                query = parse_qs(parts.query)
                host: str | None = query.get("host", [None])[0]
                self.simulator.clear_faults(host)
                self._reply(200, {"cleared": host or "all"})
            else:
                self._reply(404, {"error": f"no such control endpoint: {method} {parts.path}"})
        except (ControlError, FaultError, ScenarioError, TypeError) as err:
            self._reply(400, {"error": str(err)})

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")
