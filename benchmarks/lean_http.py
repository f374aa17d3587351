"""HTTP for the lean remoting prototype (``lean_wsman.py``): one persistent connection per endpoint.

Basic authentication on plain HTTP only (the prototype measures CPU; Negotiate, Kerberos, message
encryption and TLS are not in it). Answers are read by Content-Length and capped like the exporter's
(``MAX_RESPONSE_BYTES``); a connection the server closed while it idled is reopened once.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import socket

from collectors.sources.response_cap import MAX_RESPONSE_BYTES


class RemotingError(Exception):
    """A fault, an HTTP error or a failed pipeline, with what and where."""


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class HttpClientTransport:
    """One persistent ``http.client`` connection."""

    def __init__(self, host: str, port: int, path: str, authorization: str, timeout: float = 30) -> None:
        self.path = path
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)
        self.headers = {"Authorization": authorization, "Content-Type": "application/soap+xml;charset=UTF-8",
                        "Accept-Encoding": "identity"}

    def post(self, body: bytes) -> tuple[int, bytes]:
        try:
            self.connection.request("POST", self.path, body, self.headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the kept-alive connection while it idled: once more on a new one.
            self.connection.close()
            self.connection.request("POST", self.path, body, self.headers)
            response = self.connection.getresponse()
        length = int(response.getheader("Content-Length") or 0)
        if length > MAX_RESPONSE_BYTES:
            self.connection.close()
            raise RemotingError(f"answer of {length} bytes exceeds {MAX_RESPONSE_BYTES}")
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


def _request_head(host: str, port: int, path: str, authorization: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {authorization}\r\n"
            "Content-Type: application/soap+xml;charset=UTF-8\r\nAccept-Encoding: identity\r\n"
            "Content-Length: ").encode()


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, whether the server closes) of a response head; chunked is refused."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, closes = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closes = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise RemotingError("chunked answer; the prototype reads Content-Length only")
    if length > MAX_RESPONSE_BYTES:
        raise RemotingError(f"answer of {length} bytes exceeds {MAX_RESPONSE_BYTES}")
    return status, length, closes


class _ClosedBeforeAnswer(Exception):
    """The server closed the connection before any byte of the answer."""


class SocketTransport:
    """One persistent socket with the HTTP/1.1 framing written here (Content-Length answers only)."""

    def __init__(self, host: str, port: int, path: str, authorization: str, timeout: float = 30) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.head = _request_head(host, port, path, authorization)
        self.sock: socket.socket | None = None
        self.buffer = bytearray()

    def post(self, body: bytes) -> tuple[int, bytes]:
        reused = self.sock is not None
        try:
            end = self._send(body)
        except (BrokenPipeError, ConnectionResetError, _ClosedBeforeAnswer):
            if not reused:
                raise
            # The server closed the kept-alive connection while it idled: once more on a new one.
            self.close()
            end = self._send(body)
        status, length, closes = _parse_head(bytes(self.buffer[:end]))
        del self.buffer[:end + 4]
        while len(self.buffer) < length:
            if not self._fill():
                raise RemotingError("connection closed by the server mid-answer")
        answer = bytes(self.buffer[:length])
        del self.buffer[:length]
        if closes:
            self.close()
        return status, answer

    def _send(self, body: bytes) -> int:
        """Send a request; where its answer's head ends in the buffer."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address, self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer.clear()
        self.sock.sendall(b"".join((self.head, str(len(body)).encode(), b"\r\n\r\n", body)))
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if not self._fill() and not self.buffer:
                raise _ClosedBeforeAnswer()
            if self.sock is None:
                raise RemotingError("connection closed by the server mid-answer")
        return end

    def _fill(self) -> bool:
        """Read what arrived; False when the server closed the connection."""
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            self.close()
            return False
        self.buffer += chunk
        if len(self.buffer) > MAX_RESPONSE_BYTES + 65536:
            self.close()
            raise RemotingError("answer too large")
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class AsyncTransport:
    """The same framing on asyncio streams: many hosts' requests in flight on one thread."""

    def __init__(self, host: str, port: int, path: str, authorization: str) -> None:
        self.host, self.port = host, port
        self.head = _request_head(host, port, path, authorization)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port, limit=MAX_RESPONSE_BYTES)
        reader, writer = self.streams
        writer.write(b"".join((self.head, str(len(body)).encode(), b"\r\n\r\n", body)))
        head = await reader.readuntil(b"\r\n\r\n")
        status, length, closes = _parse_head(head[:-4])
        answer = await reader.readexactly(length)
        if closes:
            self.close()
        return status, answer

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


