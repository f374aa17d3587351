"""HTTP for one simulated host: authentication, message encryption, HTTP-level faults, WSMan routing.

``POST /wsman`` is the Windows endpoint; ``POST /PowerShell`` the Exchange endpoint (Exchange hosts
only, IIS-hosted on real servers); ``POST /OcsPowershell`` Lync's own remote PowerShell (front ends
only, on their internal web site). Each endpoint offers the authentication schemes its host is set
to (``simulator/auth.py``: Basic per request; Negotiate, Kerberos and NTLM per connection, with WinRM
message encryption). Requests are never logged with their headers: the Authorization header carries
the password or a ticket.
"""

from __future__ import annotations

import logging
import socket
from http.server import BaseHTTPRequestHandler

from simulator import auth, cmdlets, wsman
from simulator.faults import Fault, huge_body
from simulator.runtime import HostRuntime
from simulator.shells import ShellService

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # well above a 500 KiB WSMan envelope
IDLE_TIMEOUT = 120.0  # an idle keep-alive connection is closed after this (WinRM does similar)
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
_ENDPOINT_KINDS = {"/powershell": "exchange", "/ocspowershell": "lync"}  # URL path -> endpoint kind


class HostEndpoints:
    """The ShellServices of one host, by URL path."""

    def __init__(self, runtime: HostRuntime, base_url: str, cbt_app_data: bytes | None = None) -> None:
        self.runtime = runtime
        # HTTPS: the channel binding (RFC 5929 tls-server-end-point) clients bind their tokens to.
        self.cbt_app_data = cbt_app_data
        self.services = {"/wsman": ShellService(runtime, cmdlets.WINDOWS_ENDPOINT, base_url + "/wsman")}
        if runtime.is_exchange:
            self.services["/powershell"] = ShellService(runtime, cmdlets.EXCHANGE_ENDPOINT, base_url + "/PowerShell")
        if runtime.is_lync_frontend:
            self.services["/ocspowershell"] = ShellService(runtime, cmdlets.LYNC_ENDPOINT, base_url + "/OcsPowershell")

    def serve(self, conn: socket.socket, address: tuple) -> None:
        self.runtime.count_connection()
        _Handler(conn, address, self)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like WinRM
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: HostEndpoints  # type: ignore[assignment]  # our context object, not a socketserver
    # The connection's security context once Negotiate/Kerberos/NTLM completed (or while it runs).
    _conn_auth: auth.ConnectionAuth | None = None

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        log.debug("%s %s", self.server.runtime.name, format % args)

    # ------------------------------------------------------------ helpers

    def _send(self, status: int, body: bytes = b"", content_type: str | None = SOAP_CONTENT_TYPE,
              headers: dict[str, str] | list[tuple[str, str]] | None = None) -> None:
        extra = list(headers.items() if isinstance(headers, dict) else headers or [])
        extra += self._answer_headers
        self._answer_headers = []
        seal, self._seal = self._seal, None
        if seal is not None and body and status < 600:
            try:  # the answer to an encrypted request is encrypted with the same context
                content_type, body = seal.wrap(body)
            except Exception:  # noqa: BLE001 - cannot happen with a complete context; say so loudly
                log.exception("%s: cannot encrypt an answer", self.server.runtime.name)
                status, body, content_type = 500, b"", None
        try:
            self.send_response(status)
            if body and content_type:
                self.send_header("Content-Type", content_type)
            for name, value in extra:
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

    _answer_headers: list[tuple[str, str]] = []
    _seal: auth.ConnectionAuth | None = None

    def _is_tls(self) -> bool:
        return self.server.cbt_app_data is not None or hasattr(self.connection, "getpeercert")

    def _challenge(self, offered: tuple[str, ...]) -> None:
        self._answer_headers = []
        self._seal = None
        self._send(401, headers=auth.challenge_headers(offered))

    def _mechanism(self) -> str:
        conn = self._conn_auth
        return conn.mechanism if conn is not None and conn.complete else "basic"

    def _authenticate(self, offered: tuple[str, ...], body: bytes) -> tuple[str, bytes | None] | None:
        """(user, final token for the answer) when the request may proceed, else None after a 401.

        Basic is checked on every request; Negotiate, Kerberos and NTLM authenticate the connection,
        so later requests on it need no header, as with http.sys.
        """
        runtime = self.server.runtime
        header = self.headers.get("Authorization")
        parsed = auth.parse_authorization(header)
        if parsed is None:
            conn = self._conn_auth
            if header is None and conn is not None and conn.complete and conn.scheme in offered:
                return conn.user, None
            if header is not None:
                runtime.record_auth_failure()
            self._challenge(offered)
            return None
        scheme, token = parsed
        if scheme not in offered:
            runtime.record_auth_failure()
            self._challenge(offered)
            return None
        if scheme == "basic":
            self._conn_auth = None
            user = runtime.check_basic_auth(header)
            if user is None:
                runtime.record_auth_failure()
                self._challenge(offered)
                return None
            return user, None
        conn = self._conn_auth
        if conn is None or conn.complete or conn.scheme != scheme:
            try:  # a new handshake (also re-authentication on an authenticated connection)
                conn = self._conn_auth = auth.ConnectionAuth(scheme, self.server.cbt_app_data, runtime.name)
            except auth.AuthSetupError as exc:
                log.warning("%s: %s", runtime.name, exc)
                runtime.record_auth_failure()
                self._challenge(offered)
                return None
        result = conn.step(token or b"")
        if result.failed:
            log.info("%s: %s authentication refused: %s", runtime.name, scheme, result.failed)
            runtime.record_auth_failure()
            self._conn_auth = None
            if result.token:  # the KRB-ERROR, as Windows sends it
                self._answer_headers = []
                self._seal = None
                self._send(401, headers=[auth.token_header(scheme, result.token)])
            else:
                self._challenge(offered)
            return None
        if not result.complete:
            self._answer_headers = []
            self._seal = None
            self._send(401, headers=[auth.token_header(scheme, result.token or b"")])
            return None
        return conn.user, result.token

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

        path = self.path.split("?", 1)[0].rstrip("/").lower()
        service = self.server.services.get(path)
        endpoint_kind = _ENDPOINT_KINDS.get(path, "windows")
        offered = runtime.accepted_schemes(endpoint_kind)
        if faults.has("http_401"):
            self._challenge(offered)
            return
        authenticated = self._authenticate(offered, body)
        if authenticated is None:
            return  # a 401 was sent
        user, final_token = authenticated
        if service is None:
            self._send(404, b"<h1>Not Found</h1>", "text/html; charset=us-ascii")
            return
        encrypted = self.headers.get("Content-Type", "").lower().startswith("multipart/encrypted")
        conn = self._conn_auth
        if encrypted:
            if conn is None or not conn.complete:
                self._send(400, b"<h1>Bad Request</h1>", "text/html; charset=us-ascii")
                return
            try:
                body = conn.unwrap(body, self.headers.get("Content-Type", ""))
            except Exception as exc:  # noqa: BLE001 - a message sealed with another context, garbage...
                log.info("%s: cannot decrypt a request: %s", runtime.name, type(exc).__name__)
                runtime.record_auth_failure()
                self._conn_auth = None
                self._challenge(offered)
                return
            length = len(body)
        elif length and not runtime.allow_unencrypted and not self._is_tls():
            # WinRM with AllowUnencrypted=false: plain-HTTP messages must be sealed.
            self._send(401, headers=auth.challenge_headers(offered))
            return
        runtime.record_auth(endpoint_kind, self._mechanism(), encrypted)
        self._answer_headers = [auth.token_header(conn.scheme, final_token)] if final_token and conn else []
        self._seal = conn if encrypted else None
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
            # pypsrp's encrypted flows open with an empty POST: the handshake's, accepted as is.
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
