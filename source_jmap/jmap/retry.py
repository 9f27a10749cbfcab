"""When the JMAP client sends a request again, and how long it waits first.

Everything the client sends is a read (`/get`, `/query`, `/changes`, the session), so a whole
request can be sent again after any failure that may pass by itself: HTTP 429 and 503 (after the
server's Retry-After), other 5xx, a dropped or reset connection, a read timeout, a 200 whose JSON
was cut or mangled on the way, and the method error `serverUnavailable`.

This is a small loop rather than airbyte_cdk's HttpClient (the jmap package knows nothing about
Airbyte) or the `backoff` library: with Retry-After, a total budget and a reason per log line, its
decorators would need as much code as the loop, and hide the decisions this module states openly.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .errors import JmapServerError, JmapTransportError

logger = logging.getLogger("source_jmap.jmap")


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
        ceiling = min(self.first_backoff_seconds * 2 ** (retry - 1), self.max_wait_seconds)
        return ceiling * (1 - self.jitter * fraction)



class RetryableError(Exception):
    """A failure worth sending the same request again for.

    `error` is what the caller gets when the retries run out; `retry_after` is the wait the
    server asked for (Retry-After), or None to back off exponentially.
    """

    def __init__(self, error: JmapTransportError | JmapServerError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class Retries:
    """The retries of one request: decides each wait, logs it, sleeps, and gives up within the policy."""

    def __init__(
        self, policy: RetryPolicy, request: str, sleep: Callable[[float], None],
        fraction: Callable[[], float] = random.random,
    ) -> None:
        self._policy = policy
        self._request = request
        self._sleep = sleep
        self._fraction = fraction
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
        self._sleep(wait)
        self._waited += wait
        self._attempts += 1

    def _next_wait(self, failure: RetryableError) -> float:
        policy = self._policy
        if self._attempts >= policy.max_attempts:
            raise self._give_up(failure, f"gave up after {self._attempts} attempts over {self._waited:.0f} s")
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
                failure, f"gave up after {self._attempts} attempts: waiting {wait:.0f} s more would exceed "
                f"{policy.max_total_wait_seconds:.0f} s of waiting in all",
            )
        return wait

    @staticmethod
    def _give_up(failure: RetryableError, why: str) -> JmapTransportError | JmapServerError:
        return type(failure.error)(f"{failure.error}; {why}")


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
