"""Failures of a JMAP conversation, each carrying a message a person can act on.

Nothing here knows about Airbyte: the connector maps these classes to failure types.
"""

from __future__ import annotations


class JmapError(Exception):
    """Base class; `str(error)` is a complete one-line message for the user."""


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


class JmapRequestError(JmapError):
    """A request-level JMAP problem (RFC 8620 section 3.6.1), e.g. a `limit` error."""

    def __init__(self, message: str, problem_type: str, limit: str | None = None) -> None:
        super().__init__(message)
        self.problem_type = problem_type
        self.limit = limit


class JmapMethodError(JmapError):
    """A method-level error response (RFC 8620 section 3.6.2) for one call."""

    def __init__(self, method: str, error_type: str, description: str | None = None,
                 arguments: list[str] | None = None) -> None:
        detail = f": {description}" if description else ""
        super().__init__(f"{method} failed with JMAP error '{error_type}'{detail}")
        self.method = method
        self.error_type = error_type
        self.arguments = arguments or []

    @property
    def is_state_rejected(self) -> bool:
        """The server cannot compute changes from the state we hold: start over.

        Cyrus answers `invalidArguments` on `sinceState` where RFC 8620 says
        `cannotCalculateChanges`; both mean the same to a sync client. After
        `serverPartialFail` RFC 8620 tells the client to resync, which is the same.
        """
        return self.error_type in ("cannotCalculateChanges", "serverPartialFail") or (
            self.error_type == "invalidArguments" and "sinceState" in self.arguments
        )
