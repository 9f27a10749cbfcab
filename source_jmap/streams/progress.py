"""Progress of a long import: ESTIMATE traces for the Airbyte UI's progress bar, and log lines."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from airbyte_cdk.models import (
    AirbyteEstimateTraceMessage,
    AirbyteMessage,
    AirbyteTraceMessage,
    EstimateType,
    TraceType,
    Type,
)

LOG_INTERVAL_SECONDS = 10.0


@dataclass
class ImportProgress:
    stream: str
    account_id: str
    logger: logging.Logger
    total: int | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    last_logged: float = 0.0

    def estimate(self, total: int, stream_total: int) -> AirbyteMessage:
        """The server's count of what this account's import will read (`calculateTotal`).

        Airbyte keeps one estimate per stream, so the message carries `stream_total`: the
        sum over the accounts whose import has started.
        """
        self.total = total
        self.logger.info("%s: account %s: importing %d objects", self.stream, self.account_id, total)
        return AirbyteMessage(
            type=Type.TRACE,
            trace=AirbyteTraceMessage(
                type=TraceType.ESTIMATE,
                emitted_at=time.time() * 1000,
                estimate=AirbyteEstimateTraceMessage(
                    name=self.stream, type=EstimateType.STREAM, row_estimate=stream_total
                ),
            ),
        )

    def advance(self, count: int) -> None:
        """Count a page; log at most every LOG_INTERVAL_SECONDS, and always at the end."""
        self.done += count
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total
        if now - self.last_logged < LOG_INTERVAL_SECONDS and not finished and count:
            return
        self.last_logged = now
        rate = self.done / max(now - self.started, 1e-6)
        of_total = f" of {self.total}" if self.total is not None else ""
        self.logger.info(
            "%s: account %s: %d%s imported (%.0f/s)", self.stream, self.account_id, self.done, of_total, rate
        )
