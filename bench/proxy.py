"""A counting HTTP/1.1 loopback proxy: counts requests and bytes, forwards everything byte for byte.

It sits between a client and Cyrus (`127.0.0.1:<proxy port>` -> `127.0.0.1:<cyrus port>`). Every client
connection gets one upstream connection (keep-alive is preserved both ways). The client-to-server direction
is parsed just enough to count requests (request line, headers, a Content-Length or chunked body); the
server-to-client direction is relayed raw and only its bytes are counted. Cyrus's session document holds
relative URLs, so a client that fetched the session through the proxy keeps talking through it.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from dataclasses import dataclass
from typing import BinaryIO

RELAY_CHUNK = 1 << 20


@dataclass(frozen=True)
class Counts:
    requests: int = 0
    connections: int = 0
    bytes_sent: int = 0  # client -> server, request lines, headers and bodies
    bytes_received: int = 0  # server -> client, status lines, headers and bodies

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.requests - other.requests,
            self.connections - other.connections,
            self.bytes_sent - other.bytes_sent,
            self.bytes_received - other.bytes_received,
        )


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = Counts()

    def add(self, requests: int = 0, connections: int = 0, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            c = self._counts
            self._counts = Counts(
                c.requests + requests, c.connections + connections, c.bytes_sent + sent, c.bytes_received + received
            )

    def snapshot(self) -> Counts:
        with self._lock:
            return self._counts


def _read_request(reader: BinaryIO) -> bytes | None:
    """One whole HTTP request (head and body) as bytes, or None at end of stream."""
    head = [reader.readline()]
    if not head[0]:
        return None
    while head[-1] not in (b"\r\n", b"\n", b""):
        head.append(reader.readline())
    headers = {}
    for line in head[1:-1]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return b"".join(head) + _read_chunked(reader)
    return b"".join(head) + reader.read(int(headers.get("content-length", "0") or 0))


def _read_chunked(reader: BinaryIO) -> bytes:
    parts = []
    while True:
        size_line = reader.readline()
        parts.append(size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        parts.append(reader.read(size + 2))  # the chunk and its CRLF
    while True:  # trailers, up to the empty line
        line = reader.readline()
        parts.append(line)
        if line in (b"\r\n", b"\n", b""):
            return b"".join(parts)


class _Handler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        upstream = socket.create_connection(self.server.upstream)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.counter.add(connections=1)
        back = threading.Thread(target=self._relay_responses, args=(upstream, client), daemon=True)
        back.start()
        try:
            self._relay_requests(client, upstream)
        finally:
            back.join()
            upstream.close()

    def _relay_requests(self, client: socket.socket, upstream: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while (request := _read_request(reader)) is not None:
                self.server.counter.add(requests=1, sent=len(request))
                upstream.sendall(request)
        except OSError:
            pass
        finally:
            _shutdown_write(upstream)

    def _relay_responses(self, upstream: socket.socket, client: socket.socket) -> None:
        buffer = bytearray(RELAY_CHUNK)
        view = memoryview(buffer)
        try:
            while size := upstream.recv_into(buffer):
                self.server.counter.add(received=size)  # before sending: counted by the time the client has it
                client.sendall(view[:size])
        except OSError:
            pass
        finally:
            _shutdown_write(client)


def _shutdown_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.counter = _Counter()


class CountingProxy:
    """`with CountingProxy(port) as proxy:` then point clients at `proxy.port`; read `proxy.counts()`."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self._server = _ProxyServer((upstream_host, upstream_port))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def counts(self) -> Counts:
        return self._server.counter.snapshot()

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
