"""A JMAP client: session discovery, batched method calls with back-references, error mapping, retries.

What is retried, and why, is in retry.py. The server's limits are enforced before sending:
a request the server would refuse is refused here, with the same `limit` error.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import requests
from urllib3.exceptions import NewConnectionError

from .auth import Credentials
from .errors import (
    JmapAuthError,
    JmapConfigError,
    JmapError,
    JmapMethodError,
    JmapNotASessionError,
    JmapRequestError,
    JmapServerError,
    JmapTransportError,
    JmapUnreachableError,
)
from .responses import MethodResponses, NotJsonError, NotMethodResponsesError, decode_response
from .retry import Retries, RetryableError, RetryPolicy, retry_after_seconds
from .session import CORE, CoreLimits, JmapSession, looks_like_session
from .transport import new_http_session

logger = logging.getLogger("source_jmap.jmap")

CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_READ_TIMEOUT_SECONDS = 120.0
DEFAULT_RETRY_POLICY = RetryPolicy()
USER_AGENT = "source-jmap (Airbyte JMAP connector)"
EXAMPLE_SESSION_URL = "https://api.fastmail.com/jmap/session"
LIMIT_PROBLEM = "urn:ietf:params:jmap:error:limit"
# HTTP statuses that say "not now" rather than "no": the request is sent again.
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})

T = TypeVar("T")


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP answer with its whole body: what the client's readers look at."""

    status_code: int
    headers: Mapping[str, str]
    url: str
    content: bytes

    @classmethod
    def read(cls, response: requests.Response) -> HttpAnswer:
        """Read a streamed response into ONE buffer: `Response.content` joins 10 KB chunks, which holds
        a page of tens of megabytes twice at its peak."""
        return cls(response.status_code, response.headers, response.url, b"".join(response.iter_content(None)))


@dataclass(frozen=True)
class ResultReference:
    """Use the result of an earlier call in the same request (RFC 8620 section 3.7)."""

    result_of: str
    name: str
    path: str

    def to_json(self) -> dict[str, str]:
        return {"resultOf": self.result_of, "name": self.name, "path": self.path}


@dataclass(frozen=True)
class MethodCall:
    name: str
    arguments: dict[str, Any]
    call_id: str

    def to_json(self) -> list[Any]:
        arguments = {
            (f"#{key}" if isinstance(value, ResultReference) else key): (
                value.to_json() if isinstance(value, ResultReference) else value
            )
            for key, value in self.arguments.items()
        }
        return [self.name, arguments, self.call_id]


def refused_for_size(error: JmapError) -> bool:
    """Whether the server refused a request for asking too many objects at once, so that fewer may pass.

    Two ways to say it: the request-level `limit` problem on maxObjectsInGet (HTTP 400, what Cyrus
    answers for the whole request) and the method error `requestTooLarge` (RFC 8620 section 5.1).
    """
    if isinstance(error, JmapRequestError):
        return error.problem_type == LIMIT_PROBLEM and error.limit == "maxObjectsInGet"
    return isinstance(error, JmapMethodError) and error.error_type == "requestTooLarge"


def validate_session_url(url: str) -> str:
    """Reject URLs we cannot use, with a message that says what to enter instead."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise JmapConfigError(
            f"session_url must be an http:// or https:// URL such as {EXAMPLE_SESSION_URL} "
            "or https://mail.example.com"
        )
    if parts.username or parts.password:
        raise JmapConfigError("session_url must not contain credentials; enter them under Authentication")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise JmapConfigError(f"session_url has an invalid port: {parts.netloc}") from None
    return url.strip()


def well_known_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/.well-known/jmap", "", ""))


def _is_bare_origin(url: str) -> bool:
    return urlsplit(url).path in ("", "/")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _claims_json(response: HttpAnswer) -> bool:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _describe_answer(response: HttpAnswer) -> str:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    if "html" in content_type or response.content.lstrip()[:1] == b"<":
        return "an HTML page"
    try:
        orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "a response that is not valid JSON"
    return "JSON of another kind"


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def encode_request(calls: Sequence[MethodCall], using: Sequence[str], limits: CoreLimits) -> bytes:
    """The request body, refused here with the server's own `limit` error when the server would refuse it."""
    if len(calls) > limits.max_calls_in_request:
        raise _limit_error(
            f"{len(calls)} method calls in one request, more than the server's maxCallsInRequest of "
            f"{limits.max_calls_in_request}", "maxCallsInRequest",
        )
    for call in calls:
        ids = call.arguments.get("ids")
        if call.name.endswith("/get") and isinstance(ids, list) and len(ids) > limits.max_objects_in_get:
            raise _limit_error(
                f"{call.name} asks for {len(ids)} ids, more than the server's maxObjectsInGet of "
                f"{limits.max_objects_in_get}", "maxObjectsInGet",
            )
    body = orjson.dumps({"using": [CORE, *using], "methodCalls": [call.to_json() for call in calls]})
    if len(body) > limits.max_size_request:
        what = f"a single {calls[0].name} call" if len(calls) == 1 else f"a request of {len(calls)} method calls"
        split = " and cannot be split" if len(calls) == 1 else ""
        raise _limit_error(
            f"{what} is {len(body)} bytes, more than the server's maxSizeRequest of "
            f"{limits.max_size_request} bytes{split}", "maxSizeRequest",
        )
    return body


def _limit_error(what: str, limit: str) -> JmapRequestError:
    return JmapRequestError(f"Not sent: {what}", LIMIT_PROBLEM, limit)


class JmapClient:
    """Talks JMAP to one server with one set of credentials over one keep-alive connection pool.

    Transient failures are retried within `retry`; `sleep` is how the client waits (tests pass
    their own). `requests_sent` counts every HTTP attempt, retries included.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        http: requests.Session | None = None,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._url = validate_session_url(url)
        self._credentials = credentials
        self._timeout = (CONNECT_TIMEOUT_SECONDS, read_timeout)
        self._http = http or new_http_session()
        self._http.headers["User-Agent"] = USER_AGENT
        self._retry = retry
        self._sleep = sleep
        self._session: JmapSession | None = None
        self._session_url: str | None = None
        # A server never reached in this run that refuses connections is most likely misconfigured:
        # such failures are retried only once the server has answered at least once.
        self._server_answered = False
        self._warned_hosts: set[str] = set()
        self.requests_sent = 0
        self.bytes_received = 0
        self._warn_if_unencrypted(self._url, "session_url")

    @property
    def session(self) -> JmapSession:
        if self._session is None:
            self._session = self._discover_session()
        return self._session

    def call(self, calls: Sequence[MethodCall], using: Sequence[str]) -> MethodResponses:
        """Send method calls in one HTTP request; calls may refer to earlier ones' results."""
        session = self.session
        body = encode_request(calls, using, session.limits)
        responses = self._exchange(
            "POST", session.api_url, lambda answer: self._read_api_response(answer, calls),
            data=body, headers={"Content-Type": "application/json"},
        )
        if responses.session_state not in (None, session.state):
            logger.info("The JMAP session changed on the server; fetching it again before the next request")
            self._session = None
        return responses

    def call_shrinking_to_fit(
        self, build: Callable[[int], Sequence[MethodCall]], size: int, using: Sequence[str]
    ) -> tuple[MethodResponses, int]:
        """Send `build(size)`, halving `size` while the server refuses the request for its size.

        `build` makes the calls for a batch of `size` objects (a query `limit`, a `maxChanges`, a
        list of ids). Returns the responses and the size that passed: use it for the next batches.
        Any other error, or a refusal at size 1, is raised.
        """
        while True:
            try:
                responses = self.call(build(size), using)
                refusal = next((error for error in responses.method_errors() if refused_for_size(error)), None)
                if refusal is not None:
                    raise refusal
                return responses, size
            except (JmapRequestError, JmapMethodError) as error:
                if not refused_for_size(error) or size == 1:
                    raise
                logger.warning("The JMAP server refused %d objects in one request (%s); asking for %d",
                               size, error, size // 2)
                size //= 2

    def download(self, url: str) -> bytes:
        """The bytes of a blob at an expanded downloadUrl, with the same retries as API calls."""
        return self._exchange("GET", url, self._read_blob)

    def _read_blob(self, response: HttpAnswer) -> bytes:
        self._raise_for_auth(response)
        if response.status_code != 200:
            raise JmapServerError(f"The blob download at {response.url} answered HTTP {response.status_code}")
        return response.content

    # --- session --------------------------------------------------------------------

    def _discover_session(self) -> JmapSession:
        if self._session_url:
            return self._fetch_session(self._session_url)
        if _is_bare_origin(self._url):
            return self._fetch_session_via_well_known(self._url)
        try:
            return self._fetch_session(self._url)
        except JmapNotASessionError as direct_failure:
            try:
                return self._fetch_session_via_well_known(self._url)
            except JmapNotASessionError as well_known_failure:
                raise JmapNotASessionError(
                    f"{direct_failure.args[0]}, and {well_known_failure.args[0]}. Enter the JMAP session URL "
                    f"(such as {EXAMPLE_SESSION_URL}) or just the server's origin"
                ) from None

    def _fetch_session_via_well_known(self, url: str) -> JmapSession:
        """Follow /.well-known/jmap without credentials: it usually redirects, possibly to another host."""
        probe = self._exchange("GET", well_known_url(url), self._read_whole_json, authenticate=False)
        if probe.status_code == 200 and looks_like_session(self._json_or_none(probe)):
            return self._session_from(probe)
        return self._fetch_session(probe.url)

    def _fetch_session(self, url: str) -> JmapSession:
        response = self._exchange("GET", url, self._read_session_answer, headers={"Accept": "application/json"})
        if response.status_code != 200 or not looks_like_session(self._json_or_none(response)):
            raise JmapNotASessionError(f"{url} answered with {_describe_answer(response)}, not a JMAP session")
        return self._session_from(response)

    def _session_from(self, response: HttpAnswer) -> JmapSession:
        session = JmapSession.from_json(orjson.loads(response.content), response.url)
        self._session_url = response.url
        logger.info(
            "JMAP session at %s: accounts %s, API %s", response.url, ", ".join(session.accounts), session.api_url
        )
        self._warn_if_unencrypted(response.url, "The JMAP session")
        self._warn_if_unencrypted(session.api_url, "The JMAP apiUrl")
        if session.download_url:
            self._warn_if_unencrypted(session.download_url, "The JMAP downloadUrl")
        return session

    def _read_session_answer(self, response: HttpAnswer) -> HttpAnswer:
        self._raise_for_auth(response)
        return self._read_whole_json(response)

    # --- one exchange, retried ------------------------------------------------------

    def _exchange(
        self, method: str, url: str, read: Callable[[HttpAnswer], T], authenticate: bool = True,
        **kwargs: Any,
    ) -> T:
        """Send a request and `read` its answer; again while either fails transiently, within the policy."""
        parts = urlsplit(url)
        retries = Retries(self._retry, f"{method} {parts.netloc}{parts.path}", self._sleep)
        while True:
            try:
                return read(self._attempt(method, url, authenticate, **kwargs))
            except RetryableError as failure:
                retries.wait_before_next(failure)

    def _attempt(self, method: str, url: str, authenticate: bool, **kwargs: Any) -> HttpAnswer:
        """One HTTP request; a status that means "not now" raises RetryableError."""
        host = urlsplit(url).netloc
        auth = self._credentials if authenticate else None
        self.requests_sent += 1
        try:
            with self._http.request(method, url, auth=auth, timeout=self._timeout, stream=True, **kwargs) as streamed:
                response = HttpAnswer.read(streamed)
        except requests.exceptions.RequestException as error:
            raise self._transport_failure(error, host, url) from None
        self._server_answered = True
        self.bytes_received += len(response.content)
        if response.status_code in RETRIED_STATUSES:
            retry_after = (
                retry_after_seconds(response.headers.get("Retry-After"))
                if response.status_code in RETRY_AFTER_STATUSES else None
            )
            raise RetryableError(
                JmapServerError(f"The JMAP server at {host} answered {_status_text(response.status_code)}"),
                retry_after,
            )
        return response

    def _transport_failure(self, error: requests.exceptions.RequestException, host: str, url: str) -> Exception:
        """The error to raise for a request that got no complete answer: retryable unless it is the setup."""
        if isinstance(error, requests.exceptions.SSLError):
            return JmapUnreachableError(
                f"TLS error talking to {host}: {_root_cause(error)}. The server's certificate is not "
                "trusted (self-signed, expired or for another name); use a valid certificate"
            )
        if isinstance(error, requests.exceptions.ConnectTimeout) or _never_connected(error):
            reason = (
                f"within {self._timeout[0]:.0f} seconds" if isinstance(error, requests.exceptions.ConnectTimeout)
                else _root_cause(error)
            )
            message = f"Could not connect to {host}: {reason}"
            if self._server_answered:
                return RetryableError(JmapTransportError(message))
            return JmapUnreachableError(message)
        if isinstance(error, requests.exceptions.Timeout):
            return RetryableError(JmapTransportError(
                f"The JMAP server at {host} did not answer within {self._timeout[1]:.0f} seconds"
            ))
        if isinstance(error, requests.exceptions.ConnectionError):
            return RetryableError(JmapTransportError(f"The connection to {host} was lost: {_root_cause(error)}"))
        if isinstance(error, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
            return RetryableError(JmapTransportError(f"The answer from {host} arrived damaged: {_root_cause(error)}"))
        return JmapConfigError(f"Cannot request {url}: {type(error).__name__}")

    # --- answers --------------------------------------------------------------------

    def _raise_for_auth(self, response: HttpAnswer) -> None:
        where = f"at {urlsplit(response.url).netloc} with {self._credentials.description}"
        if response.status_code == 401:
            raise JmapAuthError(f"Authentication failed (HTTP 401) {where}: {self._hint_for_401(response)}")
        if response.status_code == 403:
            raise JmapAuthError(
                f"Access forbidden (HTTP 403) {where}: the server refuses these credentials access; check that "
                "the account may use JMAP (and that an API token has the mail scope)"
            )

    def _hint_for_401(self, response: HttpAnswer) -> str:
        """What to check; when the server names only other schemes (WWW-Authenticate), that is the problem."""
        offered = _challenge_schemes(response.headers.get("WWW-Authenticate", ""))
        ours = self._credentials.scheme
        if not offered or ours.lower() in {scheme.lower() for scheme in offered}:
            return self._credentials.check_hint
        instead = {"basic": "a username and password", "bearer": "an API token"}
        wanted = " or ".join(instead.get(scheme.lower(), f"{scheme} authentication") for scheme in offered)
        return f"the server asks for {' or '.join(offered)} authentication, not {ours}; use {wanted}"

    def _read_whole_json(self, response: HttpAnswer) -> HttpAnswer:
        self._refuse_broken_json(response, self._json_or_none(response))
        return response

    @staticmethod
    def _refuse_broken_json(response: HttpAnswer, document: Any) -> None:
        """A 200 that says it is JSON but does not parse was cut or mangled on the way: ask again."""
        if response.status_code == 200 and _claims_json(response) and document is None:
            raise RetryableError(JmapServerError(
                f"{response.url} answered with JSON that does not parse ({len(response.content)} bytes; "
                "cut off or damaged on the way)"
            ))

    def _read_api_response(self, response: HttpAnswer, calls: Sequence[MethodCall]) -> MethodResponses:
        self._raise_for_auth(response)
        if response.status_code != 200:
            problem = self._json_or_none(response)
            if response.status_code == 400 and isinstance(problem, dict) and "type" in problem:
                raise _request_error(problem)
            raise JmapServerError(f"The JMAP API at {response.url} answered HTTP {response.status_code}")
        try:
            entries, session_state = decode_response(response.content)
        except NotJsonError:
            self._refuse_broken_json(response, None)
            raise JmapServerError(
                f"The JMAP API at {response.url} answered with {_describe_answer(response)}"
            ) from None
        except NotMethodResponsesError as error:
            raise JmapServerError(f"The JMAP API at {response.url} answered with {error}") from None
        responses = MethodResponses(calls, entries, session_state, len(response.content))
        unavailable = [error for error in responses.method_errors() if error.error_type == "serverUnavailable"]
        if unavailable:
            raise RetryableError(JmapServerError(str(unavailable[0])))
        return responses

    def _warn_if_unencrypted(self, url: str, what: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme.lower() != "http" or _is_loopback(host) or host in self._warned_hosts:
            return
        self._warned_hosts.add(host)
        logger.warning(
            "%s %s is plain http: the credentials (%s) and every email travel unencrypted to %s; use https://",
            what, urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), self._credentials.description, host,
        )

    @staticmethod
    def _json_or_none(response: HttpAnswer) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None


def _request_error(problem: dict[str, Any]) -> JmapRequestError | RetryableError:
    """A request-level problem (RFC 8620 section 3.6.1); too many concurrent requests passes by itself."""
    problem_type = str(problem["type"])
    detail = problem.get("detail") or problem.get("description") or ""
    limit = problem.get("limit")
    error = JmapRequestError(f"The JMAP server rejected the request: {problem_type} {detail}".strip(),
                             problem_type, limit)
    if problem_type == LIMIT_PROBLEM and limit == "maxConcurrentRequests":
        return RetryableError(JmapServerError(f"{error} (limit {limit})"))
    return error


def _challenge_schemes(header: str) -> list[str]:
    """The auth schemes of a WWW-Authenticate header: 'Bearer realm="x", error="invalid_token"' -> ['Bearer']."""
    return list(dict.fromkeys(re.findall(r"(?:^|,)\s*([A-Za-z][\w.~+/-]*)(?=\s|,|$)", header)))


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first."""
    chain = [error]
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None and inner not in chain:
        chain.append(inner)
    return chain


def _never_connected(error: BaseException) -> bool:
    """The request failed before a connection existed: refused, unresolvable host, no route."""
    return any(isinstance(cause, NewConnectionError) for cause in _causes(error))


def _root_cause(error: BaseException) -> str:
    """The innermost reason, in words: 'connection refused', 'name or service not known'."""
    error = _causes(error)[-1]
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the server running, and is the port right?)"
    text = (error.strerror if isinstance(error, OSError) else None) or str(error)
    if "Name or service not known" in text or "nodename nor servname" in text or "Failed to resolve" in text:
        return "the host name could not be resolved (check the spelling of session_url)"
    text = re.sub(r" \(_ssl\.c:\d+\)$", "", text)
    return text.split("] ", 1)[-1] if "] " in text else text
