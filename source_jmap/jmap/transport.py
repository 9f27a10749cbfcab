"""HTTP for JMAP: one request and its answer, transport failures in words, retries by the table.

Connections (connection.py) acknowledge each answer at once and read it within the attempt's
overall deadline; this module sets that deadline, caps what an answer may hold, and decides by the
retry table what a failed attempt means.

One transport is shared by the download threads of raw_messages: its counters are kept under a lock.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

import requests

from .auth import Credentials
from .connection import ATTEMPT, Deadline, new_http_session
from .errors import (
    JmapAnswerTooLargeError,
    JmapCancelled,
    JmapConfigError,
    JmapServerError,
    JmapTransportError,
    JmapUnreachableError,
    auth_failure,
    describe_status,
    never_connected,
    root_cause,
)
from .policy import Action
from .retry import (
    HTTP_STATUSES,
    RETRY_AFTER_STATUSES,
    TRANSPORT_FAILURES,
    Retries,
    RetryableError,
    RetryPolicy,
    TransportFailure,
    raised_as,
    retry_after_seconds,
)

CONNECT_TIMEOUT_SECONDS = 10.0
# What the connector calls itself in each request's User-Agent header, stated once.
USER_AGENT = "source-jmap (Airbyte JMAP connector)"
# The longest one HTTP attempt may take, from sending the request to the last byte of the answer: a
# page within the 64 MB byte budget (paging.py) arrives in well under a minute even at 10 Mbit/s.
DEFAULT_REQUEST_TIMEOUT_SECONDS = 300
# The most an answer may hold once decoded. Unbounded, a 300 MB answer peaked at 680 MB of memory and a
# 1 MB gzip bomb at 2 GB (issue 13). 8 times the 64 MB page byte budget (paging.py): no page within the
# budget comes near it, however its server encodes it.
# It bounds the bytes of an answer, not all the memory it costs: an answer is held whole once decoded (its
# JSON is checked whole before use, responses.py), so memory grows with it up to the cap, and each object the
# engine takes from it costs its size again as Python objects. bench/answer_memory.py, a bare client against
# a loopback server, 39 MB before the request: a 1 GB gzip bomb (1 MB on the wire) peaked at 532 MB RSS,
# refused at 512 MB decoded; a 300 MB answer, plain or gzipped, 325 and 328 MB held, 611 MB once its one
# 300 MB value is decoded. In a full read add the CDK's ~80 MB: 582 and 391 MB were seen (issue 18). An
# answer of millions of tiny values costs far more than its bytes, as in any JSON decoder: a 40 MB `/get`
# list of zeros peaked at 1149 MB; a hostile server can exhaust memory that way, and the sync then fails
# (no state moves past what was emitted). Pages stay far below the cap (paging.py asks again in halves past
# 256 MB); only one object alone may come near it.
MAX_ANSWER_BYTES = 512_000_000
# Bodies are read, and decoded, this much at a time: the cap counts decoded bytes as they come off the socket,
# so a gzip bomb is refused once its decoded bytes reach the cap, never decoded whole (urllib3 decodes at most
# this much per read, whatever the compression ratio).
CHUNK_BYTES = 1 << 20

T = TypeVar("T")


def _amount(size: int) -> str:
    return f"{size / 1e6:g} MB" if size >= 1_000_000 else f"{size} bytes"


class AnswerTooLarge(Exception):
    """The body, decoded, grew past the most the caller accepts."""


def _copy(response: requests.Response, target: BinaryIO, max_bytes: int) -> int:
    """Decode the body into `target` CHUNK_BYTES at a time; its length, or AnswerTooLarge once past `max_bytes`."""
    written = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        written += len(chunk)
        if written > max_bytes:
            raise AnswerTooLarge
        target.write(chunk)
    return written


@dataclass(frozen=True)
class HttpResponse:
    """An HTTP response with its whole body, read into ONE buffer: `Response.content` joins 10 KB
    chunks, which holds a page of tens of megabytes twice at its peak (BytesIO grows its buffer in
    place and hands it over without a copy)."""

    status_code: int
    headers: Mapping[str, str]
    url: str
    content: bytes
    # The body bytes written to a sink instead of `content` (a streamed download's successful answer).
    streamed: int = 0

    @classmethod
    def read(cls, response: requests.Response, max_bytes: int, sink: BinaryIO | None = None) -> HttpResponse:
        """The response with its body decoded; AnswerTooLarge past `max_bytes`.

        A body of a declared length and no content coding is read at once (http.client reads no more
        than the length); any other is decoded chunk by chunk, and counted as it grows. With a `sink`,
        the body of an HTTP 200 answer goes to it chunk by chunk from its start (it is emptied first,
        since a retried attempt writes it again) and `content` is empty: memory does not grow with it.
        """
        if sink is not None and response.status_code == 200:
            sink.seek(0)
            sink.truncate()
            return cls(response.status_code, response.headers, response.url, b"", _copy(response, sink, max_bytes))
        length = response.headers.get("Content-Length", "")
        if "Content-Encoding" not in response.headers and length.isdigit():
            if int(length) > max_bytes:
                raise AnswerTooLarge
            content = b"".join(response.iter_content(None))
        else:
            body = io.BytesIO()
            _copy(response, body, max_bytes)
            content = body.getvalue()
        return cls(response.status_code, response.headers, response.url, content)

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


class HttpTransport:
    """Sends requests with one set of credentials over one keep-alive pool and retries by the table.

    `sleep` is how it waits between attempts (tests pass their own). `requests_sent` counts every
    HTTP attempt, retries included; `bytes_received` every body byte.
    """

    def __init__(
        self, credentials: Credentials, read_timeout: float, retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep, http: requests.Session | None = None,
        user_agent: str = USER_AGENT, request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.credentials = credentials
        self._timeout = (CONNECT_TIMEOUT_SECONDS, read_timeout)
        self._request_timeout = request_timeout
        self.max_answer_bytes = max_answer_bytes
        self._http = http or new_http_session()
        self._http.headers["User-Agent"] = user_agent
        self._retry = retry
        self._sleep = sleep
        self._lock = threading.Lock()
        self._server_answered = False
        self.requests_sent = 0
        self.bytes_received = 0
        # Requests under way at once, across every thread sharing the transport (`limit_concurrency`).
        self._slots: threading.BoundedSemaphore | None = None
        self._cancelled = threading.Event()

    def limit_concurrency(self, requests_at_once: int) -> None:
        """Keep at most `requests_at_once` HTTP exchanges under way at once from now on (set once: the server's
        maxConcurrentRequests, from the session). A slot is held only while a request is sent and its answer
        read, never while the caller handles it, so nested pools of downloads cannot deadlock."""
        with self._lock:
            if self._slots is None:
                self._slots = threading.BoundedSemaphore(requests_at_once)

    def cancel(self) -> None:
        """Send no more attempts, from any thread (JmapClient.cancel)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def exchange(
        self, method: str, url: str, read: Callable[[HttpResponse], T], authenticate: bool = True,
        max_bytes: int | None = None, sink: BinaryIO | None = None, **kwargs: Any,
    ) -> T:
        """Send a request and `read` its response; again while either fails transiently, within the policy.

        An answer larger than `max_bytes` decoded (by default `max_answer_bytes`) is refused, not retried.
        With a `sink`, a successful answer's body is written to it as it arrives (HttpResponse.read).
        """
        parts = urlsplit(url)
        retries = Retries(self._retry, f"{method} {parts.netloc}{parts.path}", self._sleep)
        limit = self.max_answer_bytes if max_bytes is None else max_bytes
        while True:
            try:
                return read(self._attempt(method, url, authenticate, limit, sink, **kwargs))
            except RetryableError as failure:
                retries.wait_before_next(failure)

    def _attempt(
        self, method: str, url: str, authenticate: bool, max_bytes: int, sink: BinaryIO | None, **kwargs: Any
    ) -> HttpResponse:
        """One HTTP request; a status the table retries raises RetryableError."""
        host = urlsplit(url).netloc
        with self._slots or contextlib.nullcontext():
            # Checked once the slot is had: a stopped read sends neither a request that waited for a slot nor a
            # retry (a page read ahead may be at either when its read stops).
            if self._cancelled.is_set():
                raise JmapCancelled("No more requests: the read was stopped")
            with self._lock:
                self.requests_sent += 1
            response = self._exchange_once(method, url, authenticate, max_bytes, sink, **kwargs)
        return self._answer(response, host)

    def _exchange_once(
        self, method: str, url: str, authenticate: bool, max_bytes: int, sink: BinaryIO | None, **kwargs: Any
    ) -> HttpResponse:
        """Send the request and read its answer whole, within the attempt's deadline."""
        parts = urlsplit(url)
        host = parts.netloc
        deadline = ATTEMPT.current = Deadline(time.monotonic() + self._request_timeout)
        try:
            with self._http.request(
                method, url, auth=self.credentials if authenticate else None, timeout=self._timeout, stream=True,
                **kwargs,
            ) as streamed:
                return HttpResponse.read(streamed, max_bytes, sink)
        except AnswerTooLarge:
            raise JmapAnswerTooLargeError(
                f"The JMAP server at {host} sent more than {_amount(max_bytes)} (decoded) in answer to "
                f"{method} {parts.path}; refused, since no answer this connector asks for is that large"
            ) from None
        except requests.exceptions.RequestException as error:
            raise self._transport_failure(error, host, url, deadline) from None
        finally:
            ATTEMPT.current = None

    def _answer(self, response: HttpResponse, host: str) -> HttpResponse:
        """Count the answer; a status the table retries raises RetryableError."""
        with self._lock:
            self._server_answered = True
            self.bytes_received += len(response.content) + response.streamed
        action = HTTP_STATUSES.get(response.status_code)
        if action is not None:
            retry_after = (retry_after_seconds(response.headers.get("Retry-After"))
                           if response.status_code in RETRY_AFTER_STATUSES else None)
            raise raised_as(
                action, JmapServerError(f"The JMAP server at {host} answered {describe_status(response.status_code)}"),
                retry_after,
            )
        return response

    def _transport_failure(
        self, error: requests.exceptions.RequestException, host: str, url: str, deadline: Deadline
    ) -> Exception:
        """The error for a request that got no complete answer, retryable where the table says so."""
        failure, message = (
            (TransportFailure.DEADLINE, f"The JMAP server at {host} did not send its whole answer within "
                                        f"{self._request_timeout:g} s (request_timeout_seconds, per attempt)")
            if deadline.passed else self._classify(error, host, url)
        )
        action = TRANSPORT_FAILURES[failure]
        if action is Action.RETRY or (action is Action.RETRY_ONCE_ANSWERED and self._server_answered):
            return RetryableError(JmapTransportError(message))
        if failure is TransportFailure.UNUSABLE_REQUEST:
            return JmapConfigError(message)
        return JmapUnreachableError(message)

    def _classify(
        self, error: requests.exceptions.RequestException, host: str, url: str
    ) -> tuple[TransportFailure, str]:
        if isinstance(error, requests.exceptions.SSLError):
            return TransportFailure.TLS, (
                f"TLS error talking to {host}: {root_cause(error)}. The server's certificate is not "
                "trusted (self-signed, expired or for another name); use a valid certificate"
            )
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return TransportFailure.CONNECT, f"Could not connect to {host}: within {self._timeout[0]:.0f} seconds"
        if never_connected(error):
            return TransportFailure.CONNECT, f"Could not connect to {host}: {root_cause(error)}"
        if isinstance(error, requests.exceptions.Timeout):
            return TransportFailure.READ_TIMEOUT, (
                f"The JMAP server at {host} did not answer within {self._timeout[1]:.0f} seconds"
            )
        if isinstance(error, requests.exceptions.ConnectionError):
            return TransportFailure.CONNECTION_LOST, f"The connection to {host} was lost: {root_cause(error)}"
        if isinstance(error, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
            return TransportFailure.DAMAGED, f"The answer from {host} arrived damaged: {root_cause(error)}"
        return TransportFailure.UNUSABLE_REQUEST, f"Cannot request {url}: {type(error).__name__}"

    def raise_for_auth(self, response: HttpResponse) -> None:
        """Raise JmapAuthError when the response refuses these credentials (HTTP 401 or 403)."""
        error = auth_failure(
            response.status_code, urlsplit(response.url).netloc, response.headers.get("WWW-Authenticate", ""),
            self.credentials,
        )
        if error is not None:
            raise error
