"""The read's pool (pool.py): partitions taken account by account, each account's streams in the read's order."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Record

from source_jmap.pool import RankedPool


class Listed(Partition):
    def __init__(self, stream: str, account_id: str) -> None:
        self._stream, self._account_id = stream, account_id

    def read(self) -> Iterable[Record]:
        return []

    def to_slice(self) -> Mapping[str, Any] | None:
        return {"account_id": self._account_id}

    def stream_name(self) -> str:
        return self._stream

    def __hash__(self) -> int:
        return hash((self._stream, self._account_id))


def test_waiting_partitions_are_taken_account_by_account_after_the_engines_own_tasks() -> None:
    """As the engine hands them over (stream by stream, each in every account), while the one worker is busy."""
    taken: list[str] = []
    busy = threading.Event()
    pool = RankedPool(1, "test", ["emails", "raw_messages", "quotas"])
    first = pool.submit(busy.wait)
    try:
        futures = [pool.submit(lambda p: taken.append(f"{p.stream_name()}/{p.to_slice()['account_id']}"), partition)
                   for stream in ("emails", "raw_messages") for partition in (Listed(stream, a) for a in "bac")]
        futures.append(pool.submit(taken.append, "listing quotas"))
        futures += [pool.submit(lambda p: taken.append(f"{p.stream_name()}/{p.to_slice()['account_id']}"), partition)
                    for partition in (Listed("quotas", a) for a in "cba")]
    finally:
        busy.set()
    for future in [first, *futures]:
        future.result(timeout=10)
    pool.shutdown()
    assert taken == ["listing quotas", "emails/b", "raw_messages/b", "quotas/b", "emails/a", "raw_messages/a",
                     "quotas/a", "emails/c", "raw_messages/c", "quotas/c"]
