"""Failures of a JMAP conversation, each carrying a message a person can act on, and the words for their causes.

The connector maps these classes to its failure types (source_jmap/failures.py).
"""

from __future__ import annotations

import re
from enum import Enum
from http import HTTPStatus

from urllib3.exceptions import NewConnectionError

from .auth import Credentials


class JmapError(Exception):
    """Base class; `str(error)` is a complete one-line message for the user."""


class JmapCancelled(Exception):  # not a failure: the read was stopped
    """The client was cancelled (`JmapClient.cancel`): a stopped read asks the server for nothing more.

    Not a JmapError: nothing retries it or reports it as the server's failure.
    """


class JmapConfigError(JmapError):
    """The user's settings are wrong (URL, credentials, account ids, dates)."""


class JmapTransportError(JmapError):
    """The server could not be reached or did not answer in time; may pass by itself."""


class JmapUnreachableError(JmapConfigError):
    """No connection to a server this run never reached: wrong host or port, untrusted certificate.

    Someone must act; a server that answered earlier and then drops out is a JmapTransportError.
    """


class JmapAuthError(JmapConfigError):
    """The server refused the credentials (HTTP 401/403)."""


class JmapNotASessionError(JmapConfigError):
    """The URL answered, but not with a JMAP session object."""


class JmapServerError(JmapError):
    """The server answered with something a JMAP server must not send (5xx, broken JSON)."""


class JmapAnswerTooLargeError(JmapServerError):
    """The answer, decoded, grew past the most the caller accepts; a page may be asked for again, smaller."""


class JmapBlobNotFoundError(JmapServerError):
    """The blob is gone (HTTP 404, or `notFound` from Blob/get): its object was most likely destroyed
    after it was read. A caller that can leave it to the object's deletion catches this one."""


class JmapRequestError(JmapError):
    """A request-level JMAP problem (RFC 8620 section 3.6.1), e.g. a `limit` error."""

    def __init__(self, message: str, problem_type: str, limit: str | None = None) -> None:
        super().__init__(message)
        self.problem_type = problem_type
        self.limit = limit


class MethodErrorType(Enum):
    """The `type` of a method-level error (RFC 8620 section 3.6.2 and each method's own, RFC 8620/8621)."""

    SERVER_UNAVAILABLE = "serverUnavailable"
    SERVER_FAIL = "serverFail"
    SERVER_PARTIAL_FAIL = "serverPartialFail"
    UNKNOWN_METHOD = "unknownMethod"
    INVALID_ARGUMENTS = "invalidArguments"
    INVALID_RESULT_REFERENCE = "invalidResultReference"
    FORBIDDEN = "forbidden"
    ACCOUNT_NOT_FOUND = "accountNotFound"
    ACCOUNT_NOT_SUPPORTED_BY_METHOD = "accountNotSupportedByMethod"
    ACCOUNT_READ_ONLY = "accountReadOnly"
    REQUEST_TOO_LARGE = "requestTooLarge"
    CANNOT_CALCULATE_CHANGES = "cannotCalculateChanges"
    TOO_MANY_CHANGES = "tooManyChanges"
    ANCHOR_NOT_FOUND = "anchorNotFound"
    UNSUPPORTED_SORT = "unsupportedSort"
    UNSUPPORTED_FILTER = "unsupportedFilter"
    STATE_MISMATCH = "stateMismatch"
    FROM_ACCOUNT_NOT_FOUND = "fromAccountNotFound"
    FROM_ACCOUNT_NOT_SUPPORTED_BY_METHOD = "fromAccountNotSupportedByMethod"
    # Any other string a server sends; the error keeps the string itself (`JmapMethodError.error_type`).
    OTHER = "(other)"

    @classmethod
    def of(cls, error_type: str) -> MethodErrorType:
        try:
            return cls(error_type)
        except ValueError:
            return cls.OTHER


class JmapMethodError(JmapError):
    """A method-level error response (RFC 8620 section 3.6.2) for one call: `type` is what the policy reads,
    `error_type` the server's own string, for messages."""

    def __init__(self, method: str, error_type: str, description: str | None = None,
                 arguments: list[str] | None = None) -> None:
        detail = f": {description}" if description else ""
        super().__init__(f"{method} failed with JMAP error '{error_type}'{detail}")
        self.method = method
        self.error_type = error_type
        self.type = MethodErrorType.of(error_type)
        # A server's answer is input: an error whose members have the wrong types is still an error.
        self.description = description if isinstance(description, str) else ""
        self.arguments = [name for name in arguments if isinstance(name, str)] if isinstance(arguments, list) else []


def auth_failure(status: int, host: str, www_authenticate: str, credentials: Credentials) -> JmapAuthError | None:
    """The error for an answer that refuses the credentials (HTTP 401 or 403), None for any other."""
    where = f"at {host} with {credentials.description}"
    if status == 401:
        hint = _hint_for_401(www_authenticate, credentials)
        return JmapAuthError(f"Authentication failed (HTTP 401) {where}: {hint}")
    if status == 403:
        return JmapAuthError(
            f"Access forbidden (HTTP 403) {where}: the server refuses these credentials access; check that "
            "the account may use JMAP (and that an API token has the mail scope)"
        )
    return None


def _hint_for_401(www_authenticate: str, credentials: Credentials) -> str:
    """What to check; when the server names only other schemes (WWW-Authenticate), that is the problem."""
    offered = challenge_schemes(www_authenticate)
    ours = credentials.scheme
    if not offered or ours.lower() in {scheme.lower() for scheme in offered}:
        return credentials.check_hint
    instead = {"basic": "a username and password", "bearer": "an API token"}
    wanted = " or ".join(instead.get(scheme.lower(), f"{scheme} authentication") for scheme in offered)
    return f"the server asks for {' or '.join(offered)} authentication, not {ours}; use {wanted}"


def challenge_schemes(header: str) -> list[str]:
    """The auth schemes of a WWW-Authenticate header: 'Bearer realm="x", error="invalid_token"' -> ['Bearer']."""
    return list(dict.fromkeys(re.findall(r"(?:^|,)\s*([A-Za-z][\w.~+/-]*)(?=\s|,|$)", header)))


def describe_status(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first."""
    chain = [error]
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None and inner not in chain:
        chain.append(inner)
    return chain


def never_connected(error: BaseException) -> bool:
    """The request failed before a connection existed: refused, unresolvable host, no route."""
    return any(isinstance(cause, NewConnectionError) for cause in _causes(error))


def root_cause(error: BaseException) -> str:
    """The innermost reason, in words: 'connection refused', 'name or service not known'."""
    error = _causes(error)[-1]
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the server running, and is the port right?)"
    text = (error.strerror if isinstance(error, OSError) else None) or str(error)
    if "Name or service not known" in text or "nodename nor servname" in text or "Failed to resolve" in text:
        return "the host name could not be resolved (check the spelling of session_url)"
    text = re.sub(r" \(_ssl\.c:\d+\)$", "", text)
    return text.split("] ", 1)[-1] if "] " in text else text
