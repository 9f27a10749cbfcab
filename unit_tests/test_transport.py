"""The client's connections ask the kernel to acknowledge each answer at once (TCP_QUICKACK).

Against a real HTTP server on loopback; what is checked is that the option is set before every read of
an answer, on a connection kept alive across requests. What it is worth is measured by bench/ (raw
messages from Cyrus: 61 s without, 8-13 s with).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from source_jmap.jmap import BasicCredentials, JmapClient, MethodCall, connection

from .fake_jmap import session_document
from .loopback import LoopbackHandler, loopback_server, origin

QUICKACK = getattr(socket, "TCP_QUICKACK", None)
ANSWER = {"sessionState": "s0", "methodResponses": [["Mailbox/get", {"list": [], "state": "1"}, "m"]]}


class JmapOnLoopback(LoopbackHandler):
    connections: set[tuple[str, int]]

    def do_GET(self) -> None:
        self._send(session_document(apiUrl="/jmap/api/"))

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(ANSWER)

    def _send(self, document: dict[str, Any]) -> None:
        self.server.connections.add(self.client_address)  # type: ignore[attr-defined]
        body = json.dumps(document).encode()
        self.send_head(200, len(body), "application/json")
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with loopback_server(JmapOnLoopback, connections=set()) as httpd:
        yield httpd


@pytest.fixture
def quickacks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The file descriptors on which TCP_QUICKACK was switched on, one entry per time."""
    switched_on: list[int] = []
    original = socket.socket.setsockopt

    def recording(sock: socket.socket, level: int, option: int, value: Any, *rest: Any) -> None:
        if (level, option, value) == (socket.IPPROTO_TCP, QUICKACK, 1):
            switched_on.append(sock.fileno())
        original(sock, level, option, value, *rest)

    monkeypatch.setattr(socket.socket, "setsockopt", recording)
    return switched_on


def read_three_times(server: ThreadingHTTPServer) -> JmapClient:
    client = JmapClient(f"{origin(server)}/jmap/", BasicCredentials("alice", "pw-123"))
    call = MethodCall("Mailbox/get", {"accountId": "acc1", "ids": None}, "m")
    for _ in range(3):
        assert client.call([call], [])["m"]["state"] == "1"
    return client


@pytest.mark.skipif(QUICKACK is None, reason="this platform has no TCP_QUICKACK")
def test_every_read_of_an_answer_comes_right_after_a_switch_to_immediate_acks(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []  # on the client's sockets: "ack" for TCP_QUICKACK switched on, "read" for a read
    setsockopt, recv_into = socket.socket.setsockopt, socket.socket.recv_into
    port = server.server_address[1]

    def recording_setsockopt(sock: socket.socket, level: int, option: int, value: Any, *rest: Any) -> None:
        if (level, option, value) == (socket.IPPROTO_TCP, QUICKACK, 1):
            events.append("ack")
        setsockopt(sock, level, option, value, *rest)

    def recording_recv_into(sock: socket.socket, *args: Any) -> int:
        if sock.getpeername()[1] == port:  # not the server's own reads of the requests
            events.append("read")
        return recv_into(sock, *args)

    monkeypatch.setattr(socket.socket, "setsockopt", recording_setsockopt)
    monkeypatch.setattr(socket.socket, "recv_into", recording_recv_into)
    read_three_times(server)
    reads = [index for index, event in enumerate(events) if event == "read"]
    assert len(reads) >= 4
    # The kernel forgets TCP_QUICKACK within an answer: armed once an answer, its later segments waited 40 ms.
    assert all(events[index - 1] == "ack" for index in reads)


@pytest.mark.skipif(QUICKACK is None, reason="this platform has no TCP_QUICKACK")
def test_every_answer_is_read_with_immediate_acks_on_one_kept_alive_connection(
    server: ThreadingHTTPServer, quickacks: list[int]
) -> None:
    client = read_three_times(server)
    assert client.requests_sent == 4  # the session and three calls
    assert len(quickacks) >= 4
    assert len(set(quickacks)) == 1 and len(server.connections) == 1  # type: ignore[attr-defined]


def test_where_the_platform_has_no_quickack_connections_are_plain_and_work(
    server: ThreadingHTTPServer, quickacks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "TCP_QUICKACK", None)
    assert read_three_times(server).requests_sent == 4
    assert quickacks == []
