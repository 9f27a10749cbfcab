"""The decoded size of an answer is capped (issue 13, item 14).

Unbounded, a 300 MB answer peaked at 680 MB of memory and a 1 MB gzip bomb at 2 GB. The cap here
is 8 MB so that the tests stay small; the bomb is 200 KB of gzip that decodes to 200 MB. What is
measured is that it is refused in one line and that it was never decoded whole (tracemalloc's peak), and, from
a real socket, that an endless bomb is refused once its decoded bytes reach the cap. Memory is bounded by the cap,
not below it (issue 18: the README claimed "under 32 MB" from this test's 8 MB cap); the real figures are in
transport.py, from bench/answer_memory.py.
"""

from __future__ import annotations

import gzip
import itertools
import json
import threading
import tracemalloc
import zlib
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests_mock

from source_jmap.jmap import PAGE_BYTES_BUDGET, BasicCredentials, JmapClient, MethodCall
from source_jmap.jmap.errors import JmapServerError
from source_jmap.jmap.retry import RetryPolicy
from source_jmap.jmap.transport import MAX_ANSWER_BYTES

from .fake_jmap import API_URL, SESSION_URL, session_document
from .loopback import LoopbackHandler, loopback_server, origin

CAP = 8_000_000
BOMB_BYTES = 200_000_000
CALL = MethodCall("Mailbox/get", {"accountId": "acc1", "ids": []}, "m")
BLOB_URL = "https://jmap.example.com/download/acc1/B1/raw.eml?accept=message/rfc822"


@pytest.fixture(scope="module")
def bomb() -> bytes:
    compressed = gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9)
    assert len(compressed) < BOMB_BYTES / 500
    return compressed


@pytest.fixture
def mocker() -> Any:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        yield mocker


class Waits(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(waits: Waits) -> JmapClient:
    return JmapClient(SESSION_URL, BasicCredentials("alice", "pw-123"), retry=RetryPolicy(jitter=0), sleep=waits,
                      max_answer_bytes=CAP)


def test_a_gzip_bomb_answer_is_refused_in_one_line_without_being_decoded_whole(mocker: Any, bomb: bytes) -> None:
    mocker.post(API_URL, content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    waits = Waits()
    jmap = client(waits)
    jmap.session  # noqa: B018 - the session is fetched before the measurement
    tracemalloc.start()
    try:
        with pytest.raises(JmapServerError) as raised:
            jmap.call([CALL], [])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * CAP, f"peak {peak / 1e6:.0f} MB"
    assert str(raised.value) == (
        f"The JMAP server at {urlsplit(API_URL).netloc} sent more than 8 MB (decoded) in answer to POST /jmap/api/; "
        "refused, since no answer this connector asks for is that large"
    )
    assert waits == []  # the same request would bring the same answer: not retried


@pytest.mark.parametrize("declared", [True, False], ids=["with Content-Length", "chunked"])
def test_a_plain_answer_above_the_cap_is_refused_and_one_at_the_cap_is_read(mocker: Any, declared: bool) -> None:
    def headers(size: int) -> dict[str, str]:
        return {"Content-Type": "application/json", **({"Content-Length": str(size)} if declared else {})}

    mocker.post(API_URL, content=b" " * (CAP + 1), headers=headers(CAP + 1))
    with pytest.raises(JmapServerError, match="sent more than 8 MB"):
        client(Waits()).call([CALL], [])
    body = b'{"methodResponses": [["Mailbox/get", {"list": [], "state": "7"}, "m"]], "sessionState": "s0"}'
    mocker.post(API_URL, content=body + b" " * (CAP - len(body)), headers=headers(CAP))
    assert client(Waits()).call([CALL], [])["m"]["state"] == "7"


def test_a_gzip_bomb_download_is_refused_too(mocker: Any, bomb: bytes) -> None:
    mocker.get(BLOB_URL, content=bomb, headers={"Content-Type": "message/rfc822", "Content-Encoding": "gzip"})
    with pytest.raises(JmapServerError, match=r"sent more than 8 MB \(decoded\) in answer to GET /download/"):
        client(Waits()).download(BLOB_URL)


def test_a_download_may_be_capped_lower_by_the_size_the_caller_expects(mocker: Any) -> None:
    mocker.get(BLOB_URL, content=b"x" * 5000, headers={"Content-Type": "message/rfc822"})
    with pytest.raises(JmapServerError, match="sent more than 4000 bytes"):
        client(Waits()).download(BLOB_URL, max_bytes=4000)
    assert client(Waits()).download(BLOB_URL, max_bytes=5000) == b"x" * 5000


def test_the_cap_is_well_above_the_page_byte_budget() -> None:
    """A page within the budget (paging.py) is never refused, however its objects are encoded."""
    assert MAX_ANSWER_BYTES >= 8 * PAGE_BYTES_BUDGET


# A gzip stream of zeros, a megabyte decoded per block: once the window is all zeros, each next block is the same
# 988 bytes, so the endless answer costs the server no compression.
_GZIP = zlib.compressobj(9, zlib.DEFLATED, 31)
FIRST_BLOCK, NEXT_BLOCK = (_GZIP.compress(b"\0" * 1_000_000) + _GZIP.flush(zlib.Z_SYNC_FLUSH) for _ in range(2))


class EndlessBomb(LoopbackHandler):
    """A gzip answer that never ends: zeros, about 1000 times smaller on the wire than decoded. The server counts
    what it managed to send before the client hung up."""

    def do_GET(self) -> None:
        document = json.dumps(session_document()).encode()
        self.send_head(200, len(document), "application/json")
        self.wfile.write(document)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Connection", "close")  # no length: the body runs until the connection closes
        self.end_headers()
        try:
            for block in itertools.chain([FIRST_BLOCK], itertools.repeat(NEXT_BLOCK)):
                self.wfile.write(block)
                self.server.sent += len(block)  # type: ignore[attr-defined]
        except OSError:  # the client refused the answer and closed the connection
            self.close_connection = True
        finally:
            self.server.done.set()  # type: ignore[attr-defined]


def test_an_endless_gzip_bomb_from_a_real_socket_is_refused_once_its_decoded_bytes_reach_the_cap() -> None:
    """The cap counts decoded bytes as they come off the socket: the refusal comes after about CAP of them,
    whatever the bomb's size (here without end), so what the client holds is bounded by the cap, not the bomb."""
    with loopback_server(EndlessBomb, sent=0, done=threading.Event()) as httpd:
        jmap = JmapClient(f"{origin(httpd)}/jmap/session", BasicCredentials("alice", "pw-123"),
                          retry=RetryPolicy(jitter=0), sleep=Waits(), max_answer_bytes=CAP)
        with pytest.raises(JmapServerError, match=r"sent more than 8 MB \(decoded\)"):
            jmap.call([CALL], [])
        assert httpd.done.wait(10)  # type: ignore[attr-defined]
        sent = httpd.sent  # type: ignore[attr-defined]
    # What the client read is at most what the server sent, which the socket buffers bound once the client stops.
    assert sent < 32_000_000  # ~32 GB decoded: the bomb was not read on
