"""A JMAP client: the session, method calls in one HTTP request each, blob downloads.

It puts the parts together: `discovery` finds the session, `wire` encodes the request within the
server's limits, `transport` sends it and retries by the table in `retry`, `responses` reads the answer.
What is retried, and why, is in retry.py alone. One client may be shared by download threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import requests

from .auth import Credentials
from .discovery import SessionDiscovery
from .errors import JmapBlobNotFoundError, JmapRequestError, JmapServerError
from .policy import Action, resolve
from .responses import (
    MethodResponses,
    NotJsonError,
    NotMethodResponsesError,
    decode_response,
    describe_response,
    json_or_none,
    refuse_broken_json,
)
from .retry import RetryPolicy, raised_as
from .session import JmapSession
from .transport import DEFAULT_REQUEST_TIMEOUT_SECONDS, MAX_ANSWER_BYTES, USER_AGENT, HttpResponse, HttpTransport
from .wire import MethodCall, encode_request

logger = logging.getLogger("source_jmap.jmap")

DEFAULT_READ_TIMEOUT_SECONDS = 120.0


class JmapClient:
    """Talks JMAP to one server with one set of credentials over one keep-alive connection pool.

    Transient failures are retried within `retry`; `sleep` is how the client waits (tests pass
    their own). `request_timeout` bounds each HTTP attempt whole, answer included (transport.py).
    `max_answer_bytes` caps an answer's decoded size. `requests_sent` counts every HTTP attempt, retries included.
    Threads may share a client: once the session is known, at most its maxConcurrentRequests requests and
    downloads are under way at once, whichever threads send them; `cancel` stops them all.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        http: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = USER_AGENT,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._transport = HttpTransport(
            credentials, read_timeout, retry or RetryPolicy(), sleep, http, user_agent, request_timeout,
            max_answer_bytes,
        )
        self._discovery = SessionDiscovery(url, self._transport)
        self._session: JmapSession | None = None
        self._session_lock = threading.Lock()

    @property
    def session(self) -> JmapSession:
        """The session, fetched once (again after the server says it changed); threads asking meanwhile wait."""
        with self._session_lock:
            if self._session is None:
                self._session = self._discovery.session()
                self._transport.limit_concurrency(self._session.limits.max_concurrent_requests)
            return self._session

    def cancel(self) -> None:
        """Send nothing more: every request and download from now on, in any thread, raises JmapCancelled, so a
        stopped read ends at its next request instead of going on talking to the server; so does one that waits
        for a free slot or for its next attempt (transport.py). Those under way finish (a window of downloads is
        bounded, and ends as it did when a read's generator was closed)."""
        self._transport.cancel()

    @property
    def cancelled(self) -> bool:
        return self._transport.cancelled

    @property
    def requests_sent(self) -> int:
        return self._transport.requests_sent

    @property
    def bytes_received(self) -> int:
        return self._transport.bytes_received

    def call(self, calls: Sequence[MethodCall], using: Sequence[str], max_bytes: int | None = None) -> MethodResponses:
        """Send method calls in one HTTP request; calls may refer to earlier ones' results.

        An answer larger than `max_bytes` (by default the client's answer cap) raises JmapAnswerTooLargeError.
        """
        session = self.session
        body = encode_request(calls, using, session.limits)
        responses = self._transport.exchange(
            "POST", session.api_url, lambda response: self._read_api_response(response, calls),
            data=body, headers={"Content-Type": "application/json"}, max_bytes=max_bytes,
        )
        if responses.session_state not in (None, session.state):
            logger.info("The JMAP session changed on the server; fetching it again before the next request")
            with self._session_lock:
                self._session = None
        return responses

    def download(self, url: str, max_bytes: int | None = None) -> bytes:
        """The bytes of a blob at an expanded downloadUrl, with the same retries as API calls.

        A blob is held whole (a record carries it), so its decoded size is capped like an API answer's;
        a caller that knows the blob's size (an Email's `size`) may cap it at that, plus slack.
        JmapBlobNotFoundError when the server has no such blob (HTTP 404).
        """
        return self._transport.exchange("GET", url, self._read_blob, max_bytes=max_bytes)

    def download_to(self, url: str, sink: BinaryIO, max_bytes: int | None = None) -> int:
        """Write the blob at an expanded downloadUrl to `sink` as it arrives, in chunks; its size in bytes.

        The same retries, deadline and cap as `download` (by default the answer cap, or `max_bytes`); a
        retried attempt writes the sink again from its start, so it must be seekable (a file). Memory does
        not grow with the blob. JmapBlobNotFoundError when the server has no such blob (HTTP 404).
        """
        return self._transport.exchange("GET", url, self._read_streamed_blob, max_bytes=max_bytes, sink=sink)

    def _read_blob(self, response: HttpResponse) -> bytes:
        self._check_blob_answer(response)
        return response.content

    def _read_streamed_blob(self, response: HttpResponse) -> int:
        self._check_blob_answer(response)
        return response.streamed

    def _check_blob_answer(self, response: HttpResponse) -> None:
        self._transport.raise_for_auth(response)
        if response.status_code == 404:
            raise JmapBlobNotFoundError(f"The blob download at {response.url} answered HTTP 404: no such blob")
        if response.status_code != 200:
            raise JmapServerError(f"The blob download at {response.url} answered HTTP {response.status_code}")

    def _read_api_response(self, response: HttpResponse, calls: Sequence[MethodCall]) -> MethodResponses:
        self._transport.raise_for_auth(response)
        if response.status_code != 200:
            problem = json_or_none(response)
            if response.status_code == 400 and isinstance(problem, dict) and "type" in problem:
                raise _request_error(problem)
            raise JmapServerError(f"The JMAP API at {response.url} answered HTTP {response.status_code}")
        try:
            entries, session_state = decode_response(response.content)
        except NotJsonError:
            refuse_broken_json(response)
            raise JmapServerError(
                f"The JMAP API at {response.url} answered with {describe_response(response)}"
            ) from None
        except NotMethodResponsesError as error:
            raise JmapServerError(f"The JMAP API at {response.url} answered with {error}") from None
        responses = MethodResponses(calls, entries, session_state, len(response.content))
        retried = [error for error in responses.method_errors() if resolve(error).action is Action.RETRY]
        if retried:
            raise raised_as(Action.RETRY, JmapServerError(str(retried[0])))
        return responses


def _request_error(problem: dict[str, Any]) -> Exception:
    """A request-level problem (RFC 8620 section 3.6.1), retried where the table says so."""
    problem_type = str(problem["type"])
    detail = problem.get("detail") or problem.get("description") or ""
    limit = problem.get("limit")
    error = JmapRequestError(f"The JMAP server rejected the request: {problem_type} {detail}".strip(),
                             problem_type, limit)
    if resolve(error).action is Action.RETRY:
        return raised_as(Action.RETRY, JmapServerError(f"{error} (limit {limit})"))
    return error
