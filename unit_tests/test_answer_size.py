"""The decoded size of an answer is capped (issue 13, item 14).

Unbounded, a 300 MB answer peaked at 680 MB of memory and a 1 MB gzip bomb at 2 GB. The cap here
is 8 MB so that the tests stay small; the bomb is 200 KB of gzip that decodes to 200 MB. What is
measured is that it is refused in one line and that it was never decoded whole (tracemalloc's peak).
"""

from __future__ import annotations

import gzip
import tracemalloc
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests_mock

from source_jmap.jmap import PAGE_BYTES_BUDGET, BasicCredentials, JmapClient, MethodCall
from source_jmap.jmap.errors import JmapServerError
from source_jmap.jmap.retry import RetryPolicy
from source_jmap.jmap.transport import MAX_ANSWER_BYTES

from .fake_jmap import API_URL, SESSION_URL, session_document

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
