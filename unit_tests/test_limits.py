"""The server's limits: enforced before sending, and batches that shrink when the server refuses their size."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest
import requests_mock

from source_jmap.jmap import BasicCredentials, JmapClient, MethodCall, ResultReference
from source_jmap.jmap.errors import JmapMethodError, JmapRequestError
from source_jmap.jmap.paging import PAGE_BYTES_BUDGET, PageSize, refused_for_size
from source_jmap.jmap.session import CoreLimits
from source_jmap.jmap.wire import encode_request

from .fake_jmap import API_URL, SESSION_URL, session_document

CREDENTIALS = BasicCredentials("alice@jmap.test", "pw-123")
LIMIT = "urn:ietf:params:jmap:error:limit"


def limited_session(**limits: int) -> dict[str, Any]:
    document = session_document()
    document["capabilities"]["urn:ietf:params:jmap:core"].update(limits)
    return document


def send(limits: dict[str, int], calls: list[MethodCall]) -> tuple[pytest.ExceptionInfo[JmapRequestError], int]:
    """Send `calls` to a server with these limits; the refusal and how many API requests went out."""
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=limited_session(**limits))
        api = mocker.post(API_URL, json={"methodResponses": []})
        with pytest.raises(JmapRequestError) as raised:
            JmapClient(SESSION_URL, CREDENTIALS).call(calls, [])
    return raised, api.call_count


def test_get_with_more_ids_than_max_objects_in_get_is_refused_before_sending() -> None:
    raised, sent = send({"maxObjectsInGet": 3}, [MethodCall("Email/get", {"ids": ["a", "b", "c", "d"]}, "g")])
    assert sent == 0
    assert (raised.value.problem_type, raised.value.limit) == (LIMIT, "maxObjectsInGet")
    assert str(raised.value) == "Not sent: Email/get asks for 4 ids, more than the server's maxObjectsInGet of 3"


def test_request_larger_than_max_size_request_is_refused_before_sending() -> None:
    calls = [MethodCall("Email/query", {"filter": {"text": "x" * 300}}, str(n)) for n in range(2)]
    raised, sent = send({"maxSizeRequest": 500}, calls)
    assert sent == 0
    assert raised.value.limit == "maxSizeRequest"
    assert str(raised.value).startswith("Not sent: a request of 2 method calls is ")
    assert str(raised.value).endswith("bytes, more than the server's maxSizeRequest of 500 bytes")


def test_single_call_larger_than_max_size_request_says_it_cannot_be_split() -> None:
    call = MethodCall("Email/query", {"filter": {"text": "x" * 600}}, "q")
    size = len(encode_request([call], [], CoreLimits()))
    raised, sent = send({"maxSizeRequest": 500}, [call])
    assert sent == 0
    assert str(raised.value) == (
        f"Not sent: a single Email/query call is {size} bytes, more than the server's maxSizeRequest of 500 bytes "
        "and cannot be split"
    )


def test_request_exactly_at_every_limit_is_sent() -> None:
    calls = [MethodCall("Email/get", {"ids": ["a", "b", "c"]}, "g"), MethodCall("Email/get", {"ids": []}, "h")]
    size = len(encode_request(calls, [], CoreLimits()))
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=limited_session(maxObjectsInGet=3, maxCallsInRequest=2, maxSizeRequest=size))
        api = mocker.post(API_URL, json={"methodResponses": []})
        JmapClient(SESSION_URL, CREDENTIALS).call(calls, [])
    assert api.call_count == 1


def test_back_referenced_ids_are_left_to_the_server() -> None:
    """The client cannot count ids that a query will produce; the query's limit bounds them."""
    ids = ResultReference("q", "Email/query", "/ids")
    encode_request([MethodCall("Email/get", {"ids": ids}, "g")], [], CoreLimits(maxObjectsInGet=1))


class SizeLimitedServer:
    """Answers Email/query + Email/get pages, refusing any `limit` above `largest` the way `refusal` says."""

    def __init__(self, largest: int, refusal: str) -> None:
        self.largest = largest
        self.refusal = refusal
        self.limits_asked: list[int] = []

    def __call__(self, request: Any, context: Any) -> dict[str, Any]:
        [[_, query, _]] = request.json()["methodCalls"]
        self.limits_asked.append(query["limit"])
        if query["limit"] <= self.largest:
            return {"methodResponses": [["Email/query", {"ids": ["M1"], "limit": query["limit"]}, "q"]]}
        if self.refusal == "limit":
            context.status_code = 400
            return {"type": LIMIT, "limit": "maxObjectsInGet", "detail": "too many ids"}
        return {"methodResponses": [["error", {"type": "requestTooLarge"}, "q"]]}


@dataclass(frozen=True)
class Page:
    calls: list[MethodCall]

    @property
    def page_calls(self) -> list[MethodCall]:
        return self.calls


def page(size: int) -> Page:
    return Page([MethodCall("Email/query", {"accountId": "acc1", "limit": size}, "q")])


def send_shrinking(size: int) -> tuple[Any, int]:
    """Send a page through a PageSize starting at `size`: the responses, and the size that passed."""
    page_size = PageSize(size, "test", logging.getLogger("test"))
    _, responses = page_size.send(JmapClient(SESSION_URL, CREDENTIALS), page, [])
    return responses, page_size.current


@pytest.mark.parametrize("pages_held", [1, 2, 3])  # 3: an import read ahead in pairs (jmap/pairs.py)
def test_a_read_holding_several_pages_at_once_sizes_each_to_its_share_of_the_byte_budget(pages_held: int) -> None:
    page_size = PageSize(4096, "test", logging.getLogger("test"), pages_held)
    page_size.fit(1000, PAGE_BYTES_BUDGET)  # 1000 objects came to one whole budget
    assert page_size.current == 1000 // pages_held


@pytest.mark.parametrize("refusal", ["limit", "requestTooLarge"])
def test_batch_halves_until_the_server_accepts_it_and_the_size_that_passed_is_returned(
    refusal: str, caplog: Any
) -> None:
    server = SizeLimitedServer(largest=3, refusal=refusal)
    with requests_mock.Mocker() as mocker, caplog.at_level(logging.WARNING, logger="source_jmap.jmap"):
        mocker.get(SESSION_URL, json=session_document())
        mocker.post(API_URL, json=server)
        responses, size = send_shrinking(16)
    assert responses["q"]["ids"] == ["M1"]
    assert (server.limits_asked, size) == ([16, 8, 4, 2], 2)
    assert len(caplog.messages) == 3
    assert caplog.messages[0].startswith("The JMAP server refused 16 objects in one request (")
    assert caplog.messages[0].endswith("); asking for 8")


def test_batch_refused_at_size_one_raises_the_refusal() -> None:
    server = SizeLimitedServer(largest=0, refusal="requestTooLarge")
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        mocker.post(API_URL, json=server)
        with pytest.raises(JmapMethodError, match="requestTooLarge"):
            send_shrinking(4)
    assert server.limits_asked == [4, 2, 1]


def test_errors_that_are_not_about_size_are_raised_without_shrinking() -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        api = mocker.post(API_URL, json={"methodResponses": [["error", {"type": "accountNotFound"}, "q"]]})
        responses, size = send_shrinking(4)
        with pytest.raises(JmapMethodError, match="accountNotFound"):
            responses["q"]
    assert (api.call_count, size) == (1, 4)


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (JmapRequestError("", LIMIT, "maxObjectsInGet"), True),
        (JmapMethodError("Email/get", "requestTooLarge"), True),
        (JmapRequestError("", LIMIT, "maxCallsInRequest"), False),
        (JmapRequestError("", LIMIT, "maxSizeRequest"), False),
        (JmapRequestError("", "urn:ietf:params:jmap:error:notRequest"), False),
        (JmapMethodError("Email/get", "serverFail"), False),
    ],
)
def test_only_refusals_of_too_many_objects_ask_for_smaller_batches(error: Any, refused: bool) -> None:
    assert refused_for_size(error) is refused


def test_cyrus_limit_problem_on_max_objects_in_get_asks_for_smaller_batches() -> None:
    """Cyrus refuses a /get of more ids than maxObjectsInGet with this problem for the whole request."""
    problem = {"type": LIMIT, "limit": "maxObjectsInGet", "status": 400}
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        mocker.post(API_URL, status_code=400, text=json.dumps(problem),
                    headers={"Content-Type": "application/problem+json"})
        with pytest.raises(JmapRequestError) as raised:
            JmapClient(SESSION_URL, CREDENTIALS).call(page(5).calls, [])
    assert refused_for_size(raised.value)
