"""Each HTTP attempt has an overall deadline (issue 13, item 13).

requests' timeout bounds each socket read only: a server that trickles one byte every two seconds
never trips it, and held a sync forever. Against a real loopback server that trickles its answer,
the headers or the body; the deadline here is 1 s so that each test stays within seconds.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from source_jmap.failures import failure_type_of
from source_jmap.jmap import BasicCredentials
from source_jmap.jmap.errors import JmapTransportError
from source_jmap.jmap.policy import Action
from source_jmap.jmap.retry import TRANSPORT_FAILURES, RetryPolicy, TransportFailure
from source_jmap.jmap.transport import HttpResponse, HttpTransport

from .loopback import LoopbackHandler, loopback_server, origin

TRICKLE_SECONDS = 0.2  # between two bytes: far below any read timeout
BODY = b'{"answer": "' + b"x" * 40 + b'"}'  # 54 bytes: 11 s at the trickle's pace


class Trickling(LoopbackHandler):
    trickle_headers = False

    def do_GET(self) -> None:
        if self.path == "/fast":
            self.send_head(200, len(BODY), "application/json")
            self.wfile.write(BODY)
            return
        try:
            if self.trickle_headers:
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
                self._trickle(head.encode() + b"X-Padding: " + b"p" * 40 + b"\r\n\r\n")
                self.wfile.write(BODY)
            else:
                self.send_head(200, len(BODY), "application/json")
                self._trickle(BODY)
        except OSError:  # the client gave up and closed the connection
            self.close_connection = True

    def _trickle(self, data: bytes) -> None:
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(TRICKLE_SECONDS)


class TricklingHeaders(Trickling):
    trickle_headers = True


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    with loopback_server(handler) as httpd:
        yield origin(httpd)


@pytest.fixture
def trickling() -> Iterator[str]:
    yield from serve(Trickling)


@pytest.fixture
def trickling_headers() -> Iterator[str]:
    yield from serve(TricklingHeaders)


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def transport(waits: Waits, attempts: int = 2) -> HttpTransport:
    return HttpTransport(
        BasicCredentials("alice", "pw-123"), read_timeout=120.0, retry=RetryPolicy(max_attempts=attempts, jitter=0),
        sleep=waits, request_timeout=1.0,
    )


def test_a_trickled_body_is_abandoned_at_the_deadline_retried_and_logged(
    trickling: str, caplog: pytest.LogCaptureFixture
) -> None:
    waits = Waits()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="source_jmap.jmap"), pytest.raises(JmapTransportError) as raised:
        transport(waits).exchange("GET", f"{trickling}/slow", lambda response: response)
    elapsed = time.monotonic() - started
    assert elapsed < 4  # two attempts of 1 s each; without the deadline, 11 s each
    assert waits == [1.0]  # retried once, as the policy says, then given up
    message = str(raised.value)
    assert message.startswith(
        f"The JMAP server at {trickling.removeprefix('http://')} did not send its whole answer within 1 s"
    )
    assert "gave up after 2 attempts" in message
    assert "\n" not in message
    assert any("did not send its whole answer within 1 s" in record.getMessage() for record in caplog.records)
    assert failure_type_of(raised.value).value == "transient_error"


def test_the_message_of_a_request_given_up_states_the_time_it_really_took(trickling: str) -> None:
    """With request_timeout_seconds 10 a trickling server held a request 63 s (5 attempts of 10 s, and the waits
    between them) while the message said "gave up after 5 attempts over 11 s", the waits alone. Here with real
    waits: 3 attempts of 1 s, waits of 0.2 and 0.4 s."""
    client = HttpTransport(
        BasicCredentials("alice", "pw-123"), read_timeout=120.0, request_timeout=1.0,
        retry=RetryPolicy(max_attempts=3, first_backoff_seconds=0.2, jitter=0),
    )
    started = time.monotonic()
    with pytest.raises(JmapTransportError) as raised:
        client.exchange("GET", f"{trickling}/slow", lambda response: response)
    elapsed = time.monotonic() - started
    assert 3.6 <= elapsed < 4.5  # each attempt ends at its deadline, not later
    said = re.search(r"within 1 s \(request_timeout_seconds, per attempt\); "
                     r"gave up after 3 attempts taking ([0-9.]+) s \(([0-9.]+) s of it waiting\)$", str(raised.value))
    assert said is not None, str(raised.value)
    assert abs(float(said[1]) - elapsed) < 0.2
    assert float(said[2]) == pytest.approx(0.6)


def test_trickled_headers_are_abandoned_at_the_deadline_too(trickling_headers: str) -> None:
    started = time.monotonic()
    with pytest.raises(JmapTransportError, match="did not send its whole answer within 1 s"):
        transport(Waits(), attempts=1).exchange("GET", f"{trickling_headers}/slow", lambda response: response)
    assert time.monotonic() - started < 2.5


def test_an_answer_within_the_deadline_is_read_whole_and_the_connection_kept(trickling: str) -> None:
    client = transport(Waits())
    for _ in range(3):
        response: HttpResponse = client.exchange("GET", f"{trickling}/fast", lambda response: response)
        assert response.content == BODY
    assert client.requests_sent == 3


def test_the_deadline_is_a_retried_transport_failure_in_the_table() -> None:
    assert TRANSPORT_FAILURES[TransportFailure.DEADLINE] is Action.RETRY


def test_the_read_timeout_of_a_kept_connection_is_restored_after_an_answer(trickling: str) -> None:
    """The deadline shortens the socket's timeout while an answer arrives; the next request starts afresh."""
    client = transport(Waits())
    client.exchange("GET", f"{trickling}/fast", lambda response: response)
    pools = client._http.get_adapter(trickling).poolmanager.pools  # type: ignore[attr-defined]
    [connection] = [kept for key in pools.keys() for kept in pools[key].pool.queue if kept is not None]  # noqa: SIM118
    assert isinstance(connection.sock, socket.socket)
    assert connection.sock.gettimeout() == 120.0


def test_request_timeout_seconds_of_the_config_reaches_the_transport() -> None:
    from source_jmap import SourceJmap

    config = {"session_url": "https://mail.example.com", "credentials": {"auth_type": "bearer", "api_token": "t"},
              "request_timeout_seconds": 42}
    streams = SourceJmap().streams(config)
    assert {stream._client._transport._request_timeout for stream in streams} == {42}  # type: ignore[attr-defined]
    del config["request_timeout_seconds"]
    streams = SourceJmap().streams(config)
    assert {stream._client._transport._request_timeout for stream in streams} == {300}  # type: ignore[attr-defined]
