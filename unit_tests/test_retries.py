"""Retries of the JMAP client: which failures are sent again, how long it waits, and where it stops.

Every case here is one Cyrus cannot be made to produce on demand (429, 503, resets at a chosen
request); the fault proxy of the integration tests covers the same ground against the real server.
Waits are recorded, never slept.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import requests_mock
from airbyte_cdk.models import FailureType
from urllib3.exceptions import NewConnectionError, ProtocolError

from source_jmap.failures import failure_type_of
from source_jmap.jmap import BasicCredentials, JmapClient, MethodCall
from source_jmap.jmap.errors import JmapAuthError, JmapRequestError, JmapServerError, JmapUnreachableError
from source_jmap.jmap.retry import RetryPolicy

from .fake_jmap import API_URL, SESSION_URL, session_document

CREDENTIALS = BasicCredentials("alice@jmap.test", "pw-123")
NO_JITTER = RetryPolicy(jitter=0)
CALL = MethodCall("Mailbox/get", {"accountId": "acc1", "ids": []}, "m")
OK = {"json": {"methodResponses": [["Mailbox/get", {"list": [], "state": "7"}, "m"]], "sessionState": "s0"}}


class Waits(list[float]):
    """Stands in for time.sleep: records each wait instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def mocker() -> Any:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        yield mocker


def client(waits: Waits, policy: RetryPolicy = NO_JITTER) -> JmapClient:
    return JmapClient(SESSION_URL, CREDENTIALS, retry=policy, sleep=waits)


def connection_error(cause: BaseException) -> requests.exceptions.ConnectionError:
    """A ConnectionError with the cause chain requests builds from urllib3's."""
    error = requests.exceptions.ConnectionError(str(cause))
    error.__cause__ = cause
    return error


def reset_by_peer() -> requests.exceptions.ConnectionError:
    protocol = ProtocolError("Connection aborted.")
    protocol.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    return connection_error(protocol)


def refused() -> requests.exceptions.ConnectionError:
    new_connection = NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    new_connection.__cause__ = ConnectionRefusedError(111, "Connection refused")
    return connection_error(new_connection)


def test_429_with_retry_after_seconds_waits_that_long_then_sends_the_request_again(mocker: Any) -> None:
    api = mocker.post(API_URL, [{"status_code": 429, "headers": {"Retry-After": "7"}}, OK])
    waits = Waits()
    jmap = client(waits)
    assert jmap.call([CALL], [])["m"]["state"] == "7"
    assert waits == [7.0]
    assert api.call_count == 2
    assert api.request_history[0].body == api.request_history[1].body


def test_429_with_retry_after_date_waits_until_that_date(mocker: Any) -> None:
    in_30_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    mocker.post(API_URL, [{"status_code": 429, "headers": {"Retry-After": in_30_seconds}}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    [wait] = waits
    assert 28.0 <= wait <= 30.0  # the date has whole seconds, and a moment passed since it was written


def test_retry_after_date_in_the_past_retries_at_once(mocker: Any) -> None:
    mocker.post(API_URL, [{"status_code": 503, "headers": {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [0.0]


def test_503_with_retry_after_waits_as_the_server_asked(mocker: Any) -> None:
    mocker.post(API_URL, [{"status_code": 503, "headers": {"Retry-After": "2"}}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [2.0]


@pytest.mark.parametrize("status", [503, 429, 500, 502, 504])
def test_transient_status_without_retry_after_backs_off_exponentially(mocker: Any, status: int) -> None:
    mocker.post(API_URL, [{"status_code": status}] * 3 + [OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [1.0, 2.0, 4.0]


def test_retry_after_that_is_not_a_number_or_a_date_falls_back_to_backoff(mocker: Any) -> None:
    mocker.post(API_URL, [{"status_code": 429, "headers": {"Retry-After": "soon"}}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [1.0]


def test_backoff_waits_are_jittered_below_the_exponential_ceiling(mocker: Any) -> None:
    mocker.post(API_URL, [{"status_code": 502}] * 4 + [OK])
    waits = Waits()
    client(waits, RetryPolicy()).call([CALL], [])
    assert [ceiling / 2 <= wait <= ceiling for wait, ceiling in zip(waits, [1, 2, 4, 8], strict=True)] == [True] * 4


def test_backoff_doubles_from_the_first_wait_up_to_the_longest_single_wait() -> None:
    policy = RetryPolicy(first_backoff_seconds=1, jitter=0.5, max_wait_seconds=60)
    assert [policy.backoff_seconds(retry, 0.0) for retry in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.backoff_seconds(3, 0.5) == 3.0


def test_connection_reset_is_retried_and_logged_with_its_cause(mocker: Any, caplog: Any) -> None:
    mocker.post(API_URL, [{"exc": reset_by_peer()}, OK])
    waits = Waits()
    with caplog.at_level(logging.WARNING, logger="source_jmap.jmap"):
        client(waits).call([CALL], [])
    assert waits == [1.0]
    assert caplog.messages == [
        "POST jmap.test/jmap/api/ failed: The connection to jmap.test was lost: Connection reset by peer; "
        "attempt 2 of 5 in 1.0 s, backing off"
    ]


def test_read_timeout_is_retried(mocker: Any) -> None:
    mocker.post(API_URL, [{"exc": requests.exceptions.ReadTimeout("read timed out")}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [1.0]


def test_body_cut_short_of_its_content_length_is_retried(mocker: Any) -> None:
    mocker.post(API_URL, [{"exc": requests.exceptions.ChunkedEncodingError("IncompleteRead")}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [1.0]


def test_connection_refused_by_a_server_never_reached_is_a_config_error_not_retried() -> None:
    with requests_mock.Mocker() as mocker:
        session = mocker.get(SESSION_URL, exc=refused())
        waits = Waits()
        with pytest.raises(JmapUnreachableError) as raised:
            _ = client(waits).session
    assert str(raised.value) == (
        "Could not connect to jmap.test: connection refused (is the server running, and is the port right?)"
    )
    assert (session.call_count, waits) == (1, [])
    assert failure_type_of(raised.value) == FailureType.config_error


def test_connection_refused_after_the_server_answered_is_retried_as_a_restart(mocker: Any) -> None:
    mocker.post(API_URL, [{"exc": refused()}, {"exc": refused()}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [1.0, 2.0]


def test_server_unavailable_method_error_sends_the_whole_request_again(mocker: Any) -> None:
    unavailable = {"json": {"methodResponses": [["error", {"type": "serverUnavailable"}, "m"]], "sessionState": "s0"}}
    api = mocker.post(API_URL, [unavailable, OK])
    waits = Waits()
    assert client(waits).call([CALL], [])["m"]["list"] == []
    assert (api.call_count, waits) == (2, [1.0])


@pytest.mark.parametrize(
    "damaged", [
        '{"methodResponses": [["Mailbox/get", {"li',
        '{"methodResponses": [["Mailbox/get", {"list": [\x00]',
        # Whole in its structure, broken inside an object that is decoded only when a record is due:
        # the answer is still refused before any of it is used.
        '{"methodResponses": [["Mailbox/get", {"list": [{"id": "a"}, {"id": "b", "name": nul}], "state": "7"}, "m"]]}',
    ],
    ids=["cut off", "corrupted", "mangled inside an object"],
)
def test_200_whose_json_does_not_parse_is_sent_again(mocker: Any, damaged: str) -> None:
    mocker.post(API_URL, [{"text": damaged, "headers": {"Content-Type": "application/json"}}, OK])
    waits = Waits()
    assert client(waits).call([CALL], [])["m"]["state"] == "7"
    assert waits == [1.0]


def test_session_whose_json_does_not_parse_is_fetched_again() -> None:
    with requests_mock.Mocker() as mocker:
        cut = '{"capabilities": {"urn:ietf:params:jmap:core": {"maxSizeRe'
        mocker.get(SESSION_URL, [{"text": cut, "headers": {"Content-Type": "application/json"}},
                                 {"json": session_document()}])
        waits = Waits()
        assert client(waits).session.api_url == API_URL
    assert waits == [1.0]


def test_retries_stop_after_max_attempts_with_a_transient_error_that_says_so(mocker: Any) -> None:
    api = mocker.post(API_URL, status_code=503)
    waits = Waits()
    jmap = client(waits)
    with pytest.raises(JmapServerError) as raised:
        jmap.call([CALL], [])
    assert str(raised.value) == (
        "The JMAP server at jmap.test answered HTTP 503 Service Unavailable; gave up after 5 attempts taking 15 s "
        "(15 s of it waiting)"
    )
    assert failure_type_of(raised.value) == FailureType.transient_error
    assert (api.call_count, waits) == (5, [1.0, 2.0, 4.0, 8.0])
    assert jmap.requests_sent == 6  # the session, then five attempts


def test_retry_after_longer_than_the_longest_single_wait_gives_up_at_once(mocker: Any) -> None:
    api = mocker.post(API_URL, status_code=429, headers={"Retry-After": "3600"})
    waits = Waits()
    with pytest.raises(JmapServerError) as raised:
        client(waits).call([CALL], [])
    assert str(raised.value) == (
        "The JMAP server at jmap.test answered HTTP 429 Too Many Requests; the server asked to retry in 3600 s, "
        "longer than the 60 s this connector waits at most"
    )
    assert (api.call_count, waits) == (1, [])


def test_waits_stop_before_their_sum_exceeds_the_total_budget(mocker: Any) -> None:
    mocker.post(API_URL, status_code=503, headers={"Retry-After": "6"})
    waits = Waits()
    with pytest.raises(JmapServerError, match="waiting 6 s more would exceed 10 s of waiting in all"):
        client(waits, RetryPolicy(max_total_wait_seconds=10)).call([CALL], [])
    assert waits == [6.0]


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (400, {"type": "urn:ietf:params:jmap:error:notRequest"}, JmapRequestError),
        (401, None, JmapAuthError),
        (403, None, JmapAuthError),
        (404, None, JmapServerError),
    ],
)
def test_refusals_are_never_retried(mocker: Any, status: int, body: Any, raised: type[Exception]) -> None:
    api = mocker.post(API_URL, status_code=status, json=body)
    waits = Waits()
    with pytest.raises(raised):
        client(waits).call([CALL], [])
    assert (api.call_count, waits) == (1, [])


def test_too_many_concurrent_requests_is_retried(mocker: Any) -> None:
    problem = {"type": "urn:ietf:params:jmap:error:limit", "limit": "maxConcurrentRequests"}
    mocker.post(API_URL, [{"status_code": 400, "json": problem}, OK])
    waits = Waits()
    client(waits).call([CALL], [])
    assert waits == [1.0]


def test_every_retry_logs_one_line_with_its_reason_and_wait(mocker: Any, caplog: Any) -> None:
    mocker.post(API_URL, [{"status_code": 503, "headers": {"Retry-After": "2"}}, {"status_code": 502}, OK])
    with caplog.at_level(logging.INFO, logger="source_jmap.jmap"):
        client(Waits()).call([CALL], [])
    retries = [record.getMessage() for record in caplog.records if "failed" in record.getMessage()]
    assert retries == [
        "POST jmap.test/jmap/api/ failed: The JMAP server at jmap.test answered HTTP 503 Service Unavailable; "
        "attempt 2 of 5 in 2.0 s, as the server asked (Retry-After)",
        "POST jmap.test/jmap/api/ failed: The JMAP server at jmap.test answered HTTP 502 Bad Gateway; "
        "attempt 3 of 5 in 2.0 s, backing off",
    ]
    assert all(record.levelno == logging.WARNING for record in caplog.records if record.getMessage() in retries)


def test_counters_count_every_attempt_and_every_byte_received() -> None:
    session, answer = json.dumps(session_document()), json.dumps(OK["json"])
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, text=session)
        mocker.post(API_URL, [{"status_code": 502, "text": "bad gateway"}, {"exc": reset_by_peer()}, {"text": answer}])
        jmap = client(Waits())
        jmap.call([CALL], [])
    assert jmap.requests_sent == 4  # the session, a 502, a reset, the answer
    assert jmap.bytes_received == len(session) + len("bad gateway") + len(answer)
