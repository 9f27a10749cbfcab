"""Retrying a request, as data: what HTTP statuses and transport failures mean, and how long to wait.

Everything the client sends is a read (`/get`, `/query`, `/changes`, the session, a download), so a
whole request can be sent again after any failure that may pass by itself. The tables below say, for
the failures of HTTP itself (transport.py meets them, before any JMAP answer), whether they are retried
or fail; what a JMAP answer's errors mean (method errors, request problems) is policy.py's rows.
How a failure is put in words, and which error class it carries (401/403: the credentials,
errors.auth_failure; a server never reached: unreachable), stays with transport.py, which meets it.

- `HTTP_STATUSES`: the status of an HTTP answer (transport.py); an unlisted status fails.
- `TRANSPORT_FAILURES`: a request that got no complete answer (transport.py).

How long to wait between attempts, and when to give up, is `RetryPolicy`. This is a small loop rather
than the connector framework's HTTP client (this package is free of it) or the `backoff` library:
with Retry-After, a total budget and a reason per log line, its decorators would need as much code as
the loop, and hide the decisions these tables state openly.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

from .errors import JmapServerError, JmapTransportError
from .policy import Action

logger = logging.getLogger("source_jmap.jmap")


class TransportFailure(Enum):
    """Why a request got no complete answer (transport.py tells them apart)."""

    TLS = "the certificate is not trusted"
    CONNECT = "no connection: refused, unresolvable host, connect timeout"
    READ_TIMEOUT = "connected, but no answer within the read timeout"
    DEADLINE = "the answer was still arriving when the attempt's overall deadline passed (a trickling server)"
    CONNECTION_LOST = "the connection dropped or was reset"
    DAMAGED = "the answer's framing, content encoding or JSON was broken: cut off or mangled on the way"
    UNUSABLE_REQUEST = "the request itself cannot be sent (a malformed URL)"


HTTP_STATUSES: dict[int, Action] = {
    408: Action.RETRY,
    429: Action.RETRY,  # rate limited: JMAP does not define it, but servers and proxies send it
    500: Action.RETRY,
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
}
# Of the retried statuses, those whose Retry-After header sets the wait.
RETRY_AFTER_STATUSES = frozenset({429, 503})

TRANSPORT_FAILURES: dict[TransportFailure, Action] = {
    TransportFailure.TLS: Action.FAIL,
    # A server never reached in this run that refuses connections is most likely misconfigured.
    TransportFailure.CONNECT: Action.RETRY_ONCE_ANSWERED,
    TransportFailure.READ_TIMEOUT: Action.RETRY,
    TransportFailure.DEADLINE: Action.RETRY,
    TransportFailure.CONNECTION_LOST: Action.RETRY,
    TransportFailure.DAMAGED: Action.RETRY,
    TransportFailure.UNUSABLE_REQUEST: Action.FAIL,
}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one request: attempts, each wait, and all waits together."""

    max_attempts: int = 5  # HTTP attempts per request, the first one included
    first_backoff_seconds: float = 1.0  # backoff doubles from here: 1, 2, 4, 8 s ...
    jitter: float = 0.5  # a backoff wait is drawn uniformly from [(1 - jitter) * d, d]
    max_wait_seconds: float = 60.0  # longest single wait, Retry-After included
    max_total_wait_seconds: float = 300.0  # longest time spent waiting for one request

    def backoff_seconds(self, retry: int, fraction: float) -> float:
        """The wait before retry number `retry` (1 for the first) when the server named none.

        `fraction` is uniform in [0, 1): jitter spreads clients that failed together.
        """
        ceiling = min(self.first_backoff_seconds * 2.0 ** (retry - 1), self.max_wait_seconds)
        return ceiling * (1 - self.jitter * fraction)


class RetryableError(Exception):
    """A failure the tables above say to retry.

    `error` is what the caller gets when the retries run out; `retry_after` is the wait the
    server asked for (Retry-After), or None to back off exponentially.
    """

    def __init__(self, error: JmapTransportError | JmapServerError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def raised_as(
    action: Action, error: JmapTransportError | JmapServerError, retry_after: float | None = None
) -> Exception:
    """What to raise for a failure the table resolved to `action`: RetryableError when it is retried."""
    return RetryableError(error, retry_after) if action is Action.RETRY else error


class Retries:
    """The retries of one request: decides each wait, logs it, sleeps, and gives up within the policy."""

    def __init__(
        self, policy: RetryPolicy, request: str, sleep: Callable[[float], None],
        fraction: Callable[[], float] = random.random, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._request = request
        self._sleep = sleep
        self._fraction = fraction
        self._clock = clock
        self._started = clock()  # made just before the first attempt
        self._slept = 0.0  # the clock's time spent in `sleep`, which `_waited` stands in for (tests pass their own)
        self._attempts = 1
        self._waited = 0.0

    def wait_before_next(self, failure: RetryableError) -> None:
        """Sleep before the next attempt, or raise the failure's error when the policy says stop."""
        wait = self._next_wait(failure)
        how = "as the server asked (Retry-After)" if failure.retry_after is not None else "backing off"
        logger.warning(
            "%s failed: %s; attempt %d of %d in %.1f s, %s",
            self._request, failure.error, self._attempts + 1, self._policy.max_attempts, wait, how,
        )
        before = self._clock()
        self._sleep(wait)
        self._slept += self._clock() - before
        self._waited += wait
        self._attempts += 1

    def _next_wait(self, failure: RetryableError) -> float:
        policy = self._policy
        if self._attempts >= policy.max_attempts:
            raise self._give_up(failure, f"gave up after {self._took()}")
        if failure.retry_after is None:
            wait = policy.backoff_seconds(self._attempts, self._fraction())
        elif failure.retry_after > policy.max_wait_seconds:
            raise self._give_up(
                failure, f"the server asked to retry in {failure.retry_after:.0f} s, "
                f"longer than the {policy.max_wait_seconds:.0f} s this connector waits at most",
            )
        else:
            wait = failure.retry_after
        if self._waited + wait > policy.max_total_wait_seconds:
            raise self._give_up(
                failure, f"gave up after {self._took()}: waiting {wait:.0f} s more would exceed "
                f"{policy.max_total_wait_seconds:.0f} s of waiting in all",
            )
        return wait

    def _took(self) -> str:
        """The attempts and the time they took, waits included: a trickling server held a request 63 s (five
        attempts of request_timeout_seconds 10, and the waits) while the message said "over 11 s", the waits."""
        took = self._clock() - self._started - self._slept + self._waited
        return f"{self._attempts} attempts taking {_seconds(took)} s ({_seconds(self._waited)} s of it waiting)"

    @staticmethod
    def _give_up(failure: RetryableError, why: str) -> JmapTransportError | JmapServerError:
        return type(failure.error)(f"{failure.error}; {why}")


def _seconds(amount: float) -> str:
    return f"{amount:.1f}" if amount < 10 else f"{amount:.0f}"


def retry_after_seconds(header: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """A Retry-After header (RFC 9110 section 10.2.3) in seconds from now: delay-seconds or an HTTP-date.

    None when absent or unreadable (the client then backs off on its own); 0 for a date in the past.
    """
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 850 and asctime dates carry no zone: HTTP dates are GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now()).total_seconds())
