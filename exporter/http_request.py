"""One request as the gate (``http_gate``) hands it over: complete, read under the gate's limits.

``GatedRequestHandler`` parses and answers it with the standard library's ``BaseHTTPRequestHandler``
(request line, headers, ``send_response``...), reading from the bytes the gate read and writing to
the socket; the gate, not the handler, then reads the connection's next request.
"""

from __future__ import annotations

import io
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["GatedRequestHandler", "plain_answer", "body_length"]


class GatedRequestHandler(BaseHTTPRequestHandler):
    """A request handler fed one complete request read by the gate; it answers that request only."""

    protocol_version = "HTTP/1.1"

    def __init__(self, sock: Any, client_address: tuple, server: Any, request: bytes) -> None:
        self._request_bytes = request
        super().__init__(sock, client_address, server)  # runs setup, handle, finish

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BytesIO(self._request_bytes)
        self.wfile = _SocketWriter(self.connection)

    def handle(self) -> None:
        self.handle_one_request()  # the gate reads the next request of a kept-alive connection

    def finish(self) -> None:
        pass  # writes are unbuffered; the gate owns the connection


class _SocketWriter(io.RawIOBase):
    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            self._sock.sendall(data)  # bounded by the socket's timeout (write_timeout) as a whole
        except TimeoutError as exc:
            # Not left a TimeoutError: BaseHTTPRequestHandler would catch it and log "Request timed out"
            # in words of its own, while the gate logs every client it loses mid-answer one way.
            raise ClientStoppedReading(f"the client read nothing for the write timeout: {exc}") from exc
        return len(data)


class ClientStoppedReading(ConnectionError):
    """The answer could not be written within the write timeout: the client stopped reading."""


def plain_answer(status: str, text: str) -> bytes:
    """A short plain-text answer the gate sends itself, just before closing (a refusal)."""
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


def body_length(head: bytes) -> tuple[int, tuple[str, str] | None]:
    """The Content-Length of a request head, or a refusal (status, why) for a body we cannot read."""
    length = 0
    for line in head.split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding" and sep:
            return 0, ("501 Not Implemented", "chunked request bodies are not supported")
        if name == b"content-length" and sep:
            text = value.strip()
            if not text.isdigit() or len(text) > 12:
                return 0, ("400 Bad Request", "invalid Content-Length")
            length = int(text)
    return length, None
