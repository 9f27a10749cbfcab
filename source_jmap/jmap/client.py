"""A JMAP client: session discovery, batched method calls with back-references, error mapping."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import requests

from .auth import Credentials
from .errors import (
    JmapAuthError,
    JmapConfigError,
    JmapMethodError,
    JmapNotASessionError,
    JmapRequestError,
    JmapServerError,
    JmapTransportError,
)
from .session import CORE, JmapSession, looks_like_session

logger = logging.getLogger("source_jmap.jmap")

CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_READ_TIMEOUT_SECONDS = 120.0
USER_AGENT = "source-jmap (Airbyte JMAP connector)"
EXAMPLE_SESSION_URL = "https://api.fastmail.com/jmap/session"


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


@dataclass
class MethodResponses:
    """The responses of one request, looked up by call id."""

    calls: Sequence[MethodCall]
    responses: list[list[Any]]
    _by_id: dict[str, tuple[str, dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        self._by_id = {}
        for name, arguments, call_id in self.responses:
            self._by_id.setdefault(call_id, (name, arguments))

    def __getitem__(self, call_id: str) -> dict[str, Any]:
        """The arguments of a call's response; a method error is raised as JmapMethodError."""
        method = next(call.name for call in self.calls if call.call_id == call_id)
        if call_id not in self._by_id:
            raise JmapServerError(f"The JMAP server sent no response for {method} (call '{call_id}')")
        name, arguments = self._by_id[call_id]
        if name == "error":
            raise JmapMethodError(
                method, arguments.get("type", "unknown"), arguments.get("description"), arguments.get("arguments")
            )
        return arguments


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


def _describe_answer(response: requests.Response) -> str:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    if "html" in content_type or response.content.lstrip()[:1] == b"<":
        return "an HTML page"
    try:
        orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "a response that is not valid JSON"
    return "JSON that is not a JMAP session"


class JmapClient:
    """Talks JMAP to one server with one set of credentials over one keep-alive connection pool."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        http: requests.Session | None = None,
    ) -> None:
        self._url = validate_session_url(url)
        self._credentials = credentials
        self._timeout = (CONNECT_TIMEOUT_SECONDS, read_timeout)
        self._http = http or requests.Session()
        self._http.headers["User-Agent"] = USER_AGENT
        self._session: JmapSession | None = None
        self._session_url: str | None = None
        self.requests_sent = 0
        self.bytes_received = 0

    @property
    def session(self) -> JmapSession:
        if self._session is None:
            self._session = self._discover_session()
        return self._session

    def call(self, calls: Sequence[MethodCall], using: Sequence[str]) -> MethodResponses:
        """Send method calls in one HTTP request; calls may refer to earlier ones' results."""
        session = self.session
        limit = session.limits.max_calls_in_request
        if len(calls) > limit:
            raise ValueError(f"{len(calls)} calls exceed the server's maxCallsInRequest of {limit}")
        body = orjson.dumps({"using": [CORE, *using], "methodCalls": [call.to_json() for call in calls]})
        response = self._send("POST", session.api_url, data=body, headers={"Content-Type": "application/json"})
        self._raise_for_auth(response)
        document = self._parse_api_response(response)
        if document.get("sessionState", session.state) != session.state:
            logger.info("The JMAP session changed on the server; fetching it again before the next request")
            self._session = None
        return MethodResponses(calls, document["methodResponses"])

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
        probe = self._send("GET", well_known_url(url), authenticate=False)
        if probe.status_code == 200 and looks_like_session(self._json_or_none(probe)):
            return self._session_from(probe)
        return self._fetch_session(probe.url)

    def _fetch_session(self, url: str) -> JmapSession:
        response = self._send("GET", url, headers={"Accept": "application/json"})
        self._raise_for_auth(response)
        if response.status_code != 200 or not looks_like_session(self._json_or_none(response)):
            raise JmapNotASessionError(f"{url} answered with {_describe_answer(response)}, not a JMAP session")
        return self._session_from(response)

    def _session_from(self, response: requests.Response) -> JmapSession:
        session = JmapSession.from_json(orjson.loads(response.content), response.url)
        self._session_url = response.url
        logger.info(
            "JMAP session at %s: accounts %s, API %s", response.url, ", ".join(session.accounts), session.api_url
        )
        return session

    def _send(self, method: str, url: str, authenticate: bool = True, **kwargs: Any) -> requests.Response:
        host = urlsplit(url).netloc
        auth = self._credentials if authenticate else None
        try:
            response = self._http.request(method, url, auth=auth, timeout=self._timeout, **kwargs)
        except requests.exceptions.SSLError as error:
            raise JmapTransportError(
                f"TLS error talking to {host}: {_root_cause(error)}. The server's certificate is not "
                "trusted (self-signed, expired or for another name); use a valid certificate"
            ) from None
        except requests.exceptions.Timeout:
            raise JmapTransportError(
                f"The JMAP server at {host} did not answer within {self._timeout[1]:.0f} seconds"
            ) from None
        except requests.exceptions.ConnectionError as error:
            raise JmapTransportError(f"Could not connect to {host}: {_root_cause(error)}") from None
        except requests.exceptions.RequestException as error:
            raise JmapConfigError(f"Cannot request {url}: {type(error).__name__}") from None
        self.requests_sent += 1
        self.bytes_received += len(response.content)
        return response

    def _raise_for_auth(self, response: requests.Response) -> None:
        if response.status_code in (401, 403):
            verdict = "Authentication failed" if response.status_code == 401 else "Access forbidden"
            raise JmapAuthError(
                f"{verdict} (HTTP {response.status_code}) at {urlsplit(response.url).netloc} with "
                f"{self._credentials.description}: {self._credentials.check_hint}"
            )

    def _parse_api_response(self, response: requests.Response) -> dict[str, Any]:
        document = self._json_or_none(response)
        if response.status_code == 400 and isinstance(document, dict) and "type" in document:
            problem = str(document["type"])
            detail = document.get("detail") or document.get("description") or ""
            raise JmapRequestError(
                f"The JMAP server rejected the request: {problem} {detail}".strip(), problem, document.get("limit")
            )
        if response.status_code != 200:
            raise JmapServerError(f"The JMAP API at {response.url} answered HTTP {response.status_code}")
        if not isinstance(document, dict) or not isinstance(document.get("methodResponses"), list):
            raise JmapServerError(f"The JMAP API at {response.url} answered with {_describe_answer(response)}")
        return document

    @staticmethod
    def _json_or_none(response: requests.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None


def _root_cause(error: BaseException) -> str:
    """The innermost reason, in words: 'connection refused', 'name or service not known'."""
    while error.__context__ is not None or error.__cause__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the server running, and is the port right?)"
    text = str(error.args[-1] if error.args else error)
    if "Name or service not known" in text or "nodename nor servname" in text or "Failed to resolve" in text:
        return "the host name could not be resolved (check the spelling of session_url)"
    return text.split("] ", 1)[-1] if "] " in text else text
