"""A loopback HTTP proxy in front of the real Cyrus that injects faults on a fixed schedule.

Requests are numbered from 1 in the order the proxy receives them; the schedule maps a request
number to the fault that request gets. Everything else is forwarded to Cyrus byte for byte (the
Host header included, so Cyrus's redirects point back at the proxy). Cyrus's session has a relative
apiUrl, so a connector given the proxy's URL sends every request through it.

`rewrite_session` may change the session document on its way back, to simulate another server's
limits (a small maxObjectsInGet makes small pages, and so many checkpoints). `before_forward` sees each POST
body before it goes on (a test may change the mailbox at that moment); `answered` keeps the POST bodies whose
answers came back, in that order.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
RETURNED_HEADERS = ("Content-Type", "Location", "WWW-Authenticate", "Retry-After")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Fault:
    """What happens to one request instead of (or on top of) forwarding it."""

    kind = "fault"

    def serve(self, handler: ProxyHandler, upstream: Callable[[], Answer]) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Refuse(Fault):
    """Answer with an error status without asking Cyrus: 503/429 with Retry-After, 502 and so on."""

    status: int
    retry_after: str | None = None

    @property
    def kind(self) -> str:  # type: ignore[override]
        return f"HTTP {self.status}" + (f" Retry-After {self.retry_after}" if self.retry_after is not None else "")

    def serve(self, handler: ProxyHandler, upstream: Callable[[], Answer]) -> None:
        headers = {"Content-Type": "text/html"}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        handler.reply(Answer(self.status, headers, b"<html><body>try again later</body></html>"))


@dataclass(frozen=True)
class Drop(Fault):
    """Close the connection without answering; `reset` closes it with a TCP RST instead of a FIN."""

    reset: bool = False

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "connection reset" if self.reset else "connection dropped"

    def serve(self, handler: ProxyHandler, upstream: Callable[[], Answer]) -> None:
        if self.reset:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True


@dataclass(frozen=True)
class Truncate(Fault):
    """Forward Cyrus's answer cut in half: with a Content-Length that matches the cut body (the client sees
    complete HTTP holding broken JSON) or, with `short_of_length`, the full length and then a closed socket."""

    short_of_length: bool = False

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "body shorter than Content-Length" if self.short_of_length else "JSON truncated"

    def serve(self, handler: ProxyHandler, upstream: Callable[[], Answer]) -> None:
        answer = upstream()
        cut = answer.body[: len(answer.body) // 2]
        if self.short_of_length:
            handler.reply(answer, body=cut)
            handler.close_connection = True
        else:
            handler.reply(Answer(answer.status, answer.headers, cut))


@dataclass(frozen=True)
class Corrupt(Fault):
    """Forward Cyrus's answer with bytes in its middle overwritten by bytes that are not JSON."""

    kind = "JSON corrupted"

    def serve(self, handler: ProxyHandler, upstream: Callable[[], Answer]) -> None:
        answer = upstream()
        garbage = b"\xff\x00}]<garbage"
        middle = len(answer.body) // 2
        body = answer.body[:middle] + garbage + answer.body[middle + len(garbage):]
        handler.reply(Answer(answer.status, answer.headers, body))


@dataclass(frozen=True)
class Delay(Fault):
    """Forward Cyrus's answer after a pause."""

    seconds: float

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "delayed response"

    def serve(self, handler: ProxyHandler, upstream: Callable[[], Answer]) -> None:
        answer = upstream()
        time.sleep(self.seconds)
        handler.reply(answer)


@dataclass
class FaultProxy:
    upstream_port: int
    schedule: Mapping[int, Fault] = field(default_factory=dict)
    rewrite_session: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    before_forward: Callable[[bytes], None] | None = None
    requests: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    answered: list[bytes] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_for_next_request(self) -> Fault | None:
        with self._lock:
            self.requests += 1
            fault = self.schedule.get(self.requests)
            if fault is not None:
                self.injected[fault.kind] += 1
            return fault

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if method == "POST" and self.before_forward is not None:
            self.before_forward(body)
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            upstream.request(method, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            returned = {name: response.getheader(name) for name in RETURNED_HEADERS if response.getheader(name)}
        finally:
            upstream.close()
        if self.rewrite_session is not None and method == "GET" and response.status == 200:
            payload = self._rewritten(payload)
        if method == "POST":
            with self._lock:
                self.answered.append(body)
        return Answer(response.status, returned, payload)

    def _rewritten(self, payload: bytes) -> bytes:
        try:
            document = json.loads(payload)
        except ValueError:
            return payload
        if not (isinstance(document, dict) and "apiUrl" in document):
            return payload
        assert self.rewrite_session is not None
        return json.dumps(self.rewrite_session(document)).encode()


def announcing_max_objects_in_get(limit: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A session rewrite: the session announces this maxObjectsInGet, as a server with that limit would."""

    def rewrite(session: dict[str, Any]) -> dict[str, Any]:
        session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"] = limit
        return session

    return rewrite


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProxyServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        proxy = self.server.proxy
        fault = proxy.fault_for_next_request()

        def upstream() -> Answer:
            return proxy.forward(self.command, self.path, headers, body)

        if fault is None:
            self.reply(upstream())
        else:
            fault.serve(self, upstream)

    def reply(self, answer: Answer, body: bytes | None = None) -> None:
        """Send `answer`; a different `body` is sent under the answer's own Content-Length."""
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body if body is None else body)

    def log_message(self, *args: object) -> None:
        return


class ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.proxy = proxy


@contextmanager
def running(proxy: FaultProxy) -> Iterator[str]:
    """Serve `proxy` on a free loopback port; yields its origin."""
    server = ProxyServer(proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
