"""The workers' pool of a read: partitions taken account by account, each account's streams in the read's order.

The CDK's engine lists each stream's partitions (its accounts) one stream after the other and hands them to its
thread pool in that order, so a read of many accounts reads one stream in every account, then the next stream:
all workers download raw messages at once (each partition busy writing files, the server's request slots half
idle), then all ask for the small streams, one short request each (the slots full, the processor idle). Taken
account by account, the workers read streams of both kinds side by side. `RankedPool` gives its queue an
order: the engine's own tasks first (they list partitions, quickly), then partitions by the rank of their
account (the order the accounts were first listed in), then of their stream (the read's order).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from queue import PriorityQueue
from typing import Any

from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition


class RankedPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose waiting tasks are taken by rank (`RankedQueue`), not first come first served.

    It replaces the executor's work queue (`_work_queue`, a SimpleQueue in CPython 3.8 to 3.13: `put`, `get`,
    `get_nowait`), which only the executor's own code touches."""

    def __init__(self, max_workers: int, thread_name_prefix: str, streams: list[str]) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._work_queue = RankedQueue(streams)  # type: ignore[assignment]


class RankedQueue(PriorityQueue[tuple[tuple[int, ...], int, Any]]):
    """Work items of a ThreadPoolExecutor (and the None that stops a worker, last), by rank, then as they came."""

    def __init__(self, streams: list[str]) -> None:
        super().__init__()
        self._streams = {name: rank for rank, name in enumerate(streams)}
        self._accounts: dict[str, int] = {}  # account id: its rank, in the order partitions were first listed
        self._arrived = itertools.count()
        self._ranking = threading.Lock()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put((self._rank(item), next(self._arrived), item), block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return super().get(block, timeout)[2]

    def get_nowait(self) -> Any:
        return self.get(False)

    def _rank(self, item: Any) -> tuple[int, ...]:
        if item is None:
            return (2,)
        partition = next((arg for arg in getattr(item, "args", ()) if isinstance(arg, Partition)), None)
        if partition is None:
            return (0,)  # the engine's own task: listing a stream's partitions
        account = str((partition.to_slice() or {}).get("account_id"))
        with self._ranking:
            account_rank = self._accounts.setdefault(account, len(self._accounts))
        return 1, account_rank, self._streams.get(partition.stream_name(), len(self._streams))
