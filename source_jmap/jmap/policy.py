"""What the client does about each failure, as rows: the one place to read for "what happens when ...?".

`resolve(error)` gives the row of any JmapError: the action a caller that can take it takes (a pager shrinks,
the engine resyncs or reads whole, the client retries), the kind of failure it is when it is raised (whose to
fix: `FailureKind`, which the connector maps to its own failure types in one place, source_jmap/failures.py),
and the row's wording, what the error means here. A caller that cannot take the action (a `requestTooLarge` to
a one-object `/get`) raises the error, and its kind says whose it is.

- `METHOD_ERRORS` (and the rows keyed by the argument named or the method called): a method-level error
  response (client.py retries, paging.py shrinks, sync.py resyncs or reads whole, importing.py restarts, the dialect
  streams take NOT_OFFERED as a type the account does not have); unlisted: fail.
- `REQUEST_PROBLEMS`: a request-level JMAP problem, HTTP 400 with RFC 7807 JSON (client.py); unlisted: fail.
- An answer too large to hold (transport.py refuses it): halved by a pager (paging.py).
- Any other error by its class: who must act (config, credentials, an unreachable server) or whether it may
  pass by itself (the server, the network).

HTTP statuses and transport failures are retry.py's tables, met before any of these (transport.py); the class
of error transport.py raises for a failure it does not retry (unreachable, or a request that cannot be sent)
gives its kind here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import (
    JmapAnswerTooLargeError,
    JmapConfigError,
    JmapError,
    JmapMethodError,
    JmapRequestError,
    JmapServerError,
    JmapTransportError,
    MethodErrorType,
)
from .wire import LIMIT_PROBLEM


class Action(Enum):
    RETRY = "send the same request again, after the server's Retry-After or a backoff"
    RETRY_ONCE_ANSWERED = "retry if the server answered earlier in this run; before that, fail as unreachable"
    SHRINK = "send it again asking for half as many objects (paging.py)"
    RESYNC = "the saved state is of no use any more: import the type again (sync.py)"
    READ_WHOLE = "the server has no Foo/changes: read the type in full again, every sync (sync.py)"
    RESTART = "the anchor object is gone: page on from the last position known (importing.py)"
    NO_ANCHOR = "the server refuses `anchor`: page by the sort value and a position within it (importing.py)"
    NOT_OFFERED = "the server names the type's capability but does not serve it: nothing to read (streams/dialects.py)"
    FAIL = "raise the error; its kind tells whose to fix it"


class FailureKind(Enum):
    """Whose a failure is to fix, free of any framework's names."""

    USER = "the user's to fix: settings, credentials, the accounts and what these credentials may read in them"
    TRANSIENT = "may pass by itself: the network, or a server failing for now"
    UNEXPECTED = "neither: the server or the connector did what the other does not expect"


@dataclass(frozen=True)
class Row:
    action: Action
    kind: FailureKind
    wording: str


def _fail(kind: FailureKind, wording: str) -> Row:
    return Row(Action.FAIL, kind, wording)


_U = FailureKind.UNEXPECTED
E = MethodErrorType

METHOD_ERRORS: dict[MethodErrorType, Row] = {
    E.SERVER_UNAVAILABLE: Row(Action.RETRY, FailureKind.TRANSIENT, "the server is busy for now"),
    E.REQUEST_TOO_LARGE: Row(Action.SHRINK, _U, "the server refuses that many objects in one call"),
    E.CANNOT_CALCULATE_CHANGES: Row(Action.RESYNC, _U, "the server cannot list the changes since the saved state"),
    # RFC 8620 section 3.6.2: the client must resync.
    E.SERVER_PARTIAL_FAIL: Row(Action.RESYNC, _U, "the server applied part of a change: the client must resync"),
    # RFC 8620 section 5.6 defines it for /queryChanges (which this connector never calls: /changes pages with
    # hasMoreChanges instead); a server answering it to /changes cannot list the changes since the state.
    E.TOO_MANY_CHANGES: Row(Action.RESYNC, _U, "the server cannot list that many changes since the saved state"),
    E.ANCHOR_NOT_FOUND: Row(Action.RESTART, _U, "the object the page was anchored after is gone"),
    # On a method other than /changes (below): Cyrus without `jmap_nonstandard_extensions` lists its sieve
    # capability yet answers SieveScript/get with unknownMethod. A mail stream meeting it fails.
    E.UNKNOWN_METHOD: Row(Action.NOT_OFFERED, _U, "the server lists the capability but has no such method"),
    # RFC 8620 section 3.6.2: the account is gone, not shared with this user, or lacks the data type;
    # only the user can change that (account_ids, sharing rights).
    E.FORBIDDEN: _fail(FailureKind.USER, "these credentials may not read this in the account"),
    E.ACCOUNT_NOT_FOUND: _fail(FailureKind.USER, "no such account for these credentials"),
    E.ACCOUNT_NOT_SUPPORTED_BY_METHOD: _fail(FailureKind.USER, "the account does not have this data type"),
}
# Rows for an error on one kind of method, by the method name's end.
METHOD_ERRORS_ON_METHOD: dict[tuple[MethodErrorType, str], Row] = {
    # Cyrus has no Identity/changes (nor Quota/changes, SieveScript/changes).
    (E.UNKNOWN_METHOD, "/changes"): Row(Action.READ_WHOLE, _U, "the server has no /changes for the type"),
}
# Errors that name an argument, in `arguments` or in their description: Cyrus answers `invalidArguments`
# naming `sinceState` where RFC 8620 says `cannotCalculateChanges`; Apache James refuses `anchor` on
# Email/query ("The following parameter anchor is syntactically valid, but is not supported").
METHOD_ERRORS_ON_ARGUMENT: dict[tuple[MethodErrorType, str], Row] = {
    (E.INVALID_ARGUMENTS, "sinceState"): Row(Action.RESYNC, _U, "the server refuses the saved state"),
    (E.INVALID_ARGUMENTS, "anchor"): Row(Action.NO_ANCHOR, _U, "the server refuses `anchor`"),
    (E.INVALID_ARGUMENTS, "anchorOffset"): Row(Action.NO_ANCHOR, _U, "the server refuses `anchorOffset`"),
}
OTHER_METHOD_ERROR = _fail(_U, "the server refuses the call")

REQUEST_PROBLEMS: dict[tuple[str, str | None], Row] = {
    # What Cyrus answers for a /get of too many ids.
    (LIMIT_PROBLEM, "maxObjectsInGet"): Row(Action.SHRINK, _U, "the server refuses that many objects in one call"),
    (LIMIT_PROBLEM, "maxConcurrentRequests"): Row(Action.RETRY, FailureKind.TRANSIENT,
                                                  "the server has too many requests under way"),
}
OTHER_REQUEST_PROBLEM = _fail(_U, "the server refuses the request")

# An answer past what the caller accepts: a page is asked for again in halves (paging.py); a JmapServerError.
ANSWER_TOO_LARGE = Row(Action.SHRINK, FailureKind.TRANSIENT, "the answer is larger than the caller holds")
# The other errors, by class: the first that the error is an instance of.
BY_CLASS: tuple[tuple[type[JmapError], Row], ...] = (
    (JmapConfigError, _fail(FailureKind.USER, "the settings, the credentials or the server's address")),
    (JmapTransportError, _fail(FailureKind.TRANSIENT, "the server could not be reached or did not answer in time")),
    (JmapServerError, _fail(FailureKind.TRANSIENT, "the server answered what a JMAP server must not")),
)
OTHER_ERROR = _fail(_U, "an error of no known class")


def resolve(error: JmapError) -> Row:
    """The row that decides what happens about `error`."""
    if isinstance(error, JmapMethodError):
        return _method_error_row(error)
    if isinstance(error, JmapRequestError):
        return REQUEST_PROBLEMS.get((error.problem_type, error.limit), OTHER_REQUEST_PROBLEM)
    if isinstance(error, JmapAnswerTooLargeError):
        return ANSWER_TOO_LARGE
    return next((row for error_class, row in BY_CLASS if isinstance(error, error_class)), OTHER_ERROR)


def _method_error_row(error: JmapMethodError) -> Row:
    words = set(error.arguments) | set(error.description.replace(".", " ").replace(",", " ").split())
    for (error_type, argument), row in METHOD_ERRORS_ON_ARGUMENT.items():
        if error_type is error.type and argument in words:
            return row
    for (error_type, method_end), row in METHOD_ERRORS_ON_METHOD.items():
        if error_type is error.type and error.method.endswith(method_end):
            return row
    return METHOD_ERRORS.get(error.type, OTHER_METHOD_ERROR)
