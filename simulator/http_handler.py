"""HTTP for one simulated host: Basic auth, fault injection at the HTTP level, WSMan routing.

``POST /wsman`` is the Windows endpoint; ``POST /PowerShell`` the Exchange endpoint (Exchange hosts
only, IIS-hosted on real servers). Requests are never logged with their headers: the Authorization
header carries the password.
"""

from __future__ import annotations

import logging
import socket
from http.server import BaseHTTPRequestHandler

from simulator import cmdlets, wsman
from simulator.faults import Fault, huge_body
from simulator.runtime import HostRuntime
from simulator.shells import ShellService

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # well above a 500 KiB WSMan envelope
IDLE_TIMEOUT = 120.0  # an idle keep-alive connection is closed after this (WinRM does similar)
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"


class HostEndpoints:
    """The ShellServices of one host, by URL path."""

    def __init__(self, runtime: HostRuntime, base_url: str) -> None:
        self.runtime = runtime
        self.services = {"/wsman": ShellService(runtime, cmdlets.WINDOWS_ENDPOINT, base_url + "/wsman")}
        if runtime.is_exchange:
            self.services["/powershell"] = ShellService(runtime, cmdlets.EXCHANGE_ENDPOINT, base_url + "/PowerShell")

    def serve(self, conn: socket.socket, address: tuple) -> None:
        _Handler(conn, address, self)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like WinRM
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: HostEndpoints  # type: ignore[assignment]  # our context object, not a socketserver

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.server.runtime.name, format % args)

    # ------------------------------------------------------------ helpers

    def _send(self, status: int, body: bytes = b"", content_type: str | None = SOAP_CONTENT_TYPE,
              headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            if body and content_type:
                self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client went away (e.g. after its read timeout)

    def _stream_huge(self, fault: Fault) -> None:
        """The ``huge`` fault: a chunked 200 of ``size_mb`` MiB, written piece by piece as the client reads.

        Ends early when the client hangs up (what a client that caps answers does) or the simulator stops.
        """
        self.close_connection = True
        fault.counter.opened()
        try:
            self.send_response(200)
            self.send_header("Content-Type", SOAP_CONTENT_TYPE)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in huge_body(fault.size_mb * 1024 * 1024):
                if self.server.runtime.stopping.is_set():
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                fault.counter.add(len(piece))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass  # the client went away
        finally:
            fault.counter.closed()

    def _fault(self, fault: wsman.WSManFault, relates_to: str = "") -> None:
        self._send(500, wsman.fault_body(fault, relates_to, self.server.runtime.name))

    # ------------------------------------------------------------ verbs

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._send(405, b"", headers={"Allow": "POST"})

    do_PUT = do_DELETE = do_GET

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        runtime = self.server.runtime
        runtime.count_request()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_REQUEST_BYTES:
            self.close_connection = True
            self._send(413)
            return
        body = self.rfile.read(length) if length else b""

        faults = runtime.faults
        if faults.has("hang"):
            faults.wait_while("hang", runtime.stopping)
        if runtime.stopping.is_set():
            self.close_connection = True
            return
        delay = faults.latency_seconds()
        if delay and runtime.stopping.wait(delay):
            self.close_connection = True
            return

        user = runtime.check_basic_auth(self.headers.get("Authorization"))
        if user is None or faults.has("http_401"):
            self._send(401, headers={"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        service = self.server.services.get(self.path.split("?", 1)[0].rstrip("/").lower())
        if service is None:
            self._send(404, b"<h1>Not Found</h1>", "text/html; charset=us-ascii")
            return
        if faults.has("http_500"):
            self._fault(wsman.provider_failure(), _message_id(body))
            return
        if faults.has("malformed_soap"):
            self._send(200, b"<html><body>Service Unavailable</body", SOAP_CONTENT_TYPE)
            return
        huge = faults.active().get("huge")
        if huge is not None:
            self._stream_huge(huge)
            return
        if not length:
            # pypsrp's encrypted flows open with an empty POST; with Basic auth it is just accepted.
            self._send(200)
            return
        try:
            request = wsman.parse_request(body)
        except wsman.WSManFault as fault:
            self._fault(fault)
            return
        try:
            answer = service.handle(request, user, self.client_address[0])
        except wsman.WSManFault as fault:
            self._fault(fault, request.message_id)
            return
        except Exception:  # a simulator bug: answer like a crashing provider, keep serving
            log.exception("simulator failed on %s %s", runtime.name, request.verb)
            self._fault(wsman.provider_failure(), request.message_id)
            return
        self._send(200, answer)


def _message_id(body: bytes) -> str:
    try:
        return wsman.parse_request(body).message_id
    except wsman.WSManFault:
        return ""
