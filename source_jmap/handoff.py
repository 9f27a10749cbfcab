"""The engine's queue: what the workers read goes through it to the main thread, which alone writes messages.

One thread takes (the main thread), in the order items were put: a worker's STATE follows its records, so a
STATE never covers a record not yet written. How far a worker may run ahead of the output depends on how many
read at once:

- one worker (`Lockstep`): not at all, as a classic stream's generator did. A read stopped after a message (a
  killed sync; the simulation's kill) has sent no request past it, and it asks the server the same things in the
  same order every time: the simulation replays a seed's history exactly.
- several (`AheadOfOutput`): by AHEAD_BYTES of records, so that a worker asks for its next page while the main
  thread still writes the last one's records.
"""

from __future__ import annotations

import threading
from collections import deque
from queue import Queue

import msgspec
from airbyte_cdk.models import AirbyteMessage
from airbyte_cdk.sources.concurrent_source.stream_thread_exception import StreamThreadException
from airbyte_cdk.sources.streams.concurrent.partitions.types import QueueItem
from airbyte_cdk.sources.types import Record

# How many bytes of records (their JSON) the workers may have read that the main thread has not written yet, when
# several read at once. Each worker then asks for its next page while its last one is being written, instead of
# waiting for its turn at the output record by record (py-spy: the 5 workers of bench/concurrent_read.py (b) spent
# 47% of their samples waiting so). (b), 50 accounts, 5 workers, 50 ms a request: 18.23 s against 20.03 s in lockstep
# (medians of 3, rounds interleaved; bench/README.md). Bounded in bytes, not records, since a record holds up to
# max_raw_message_bytes: what waits costs at most about this much (a few times it as Python objects) plus one record.
AHEAD_BYTES = 8 * 1024 * 1024


class HandOff(Queue[QueueItem]):
    """The queue, and the first failure of a stream that the main thread took from it."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.failure: StreamThreadException | None = None

    def get(self, block: bool = True, timeout: float | None = None) -> QueueItem:
        item = super().get(block, timeout)
        if isinstance(item, StreamThreadException) and self.failure is None:
            self.failure = item
        return item


class Lockstep(HandOff):
    """A worker's `put` returns only once the main thread took the item and came back for the next one: nothing
    waits in memory but the one item handed over. The n-th `get` takes the n-th item. No worker is left waiting
    here when a read ends: a put that waits is followed by its task's own last item (one of the engine's, which
    does not wait), and the engine ends only once it took every task's last item."""

    def __init__(self) -> None:
        super().__init__(maxsize=1)
        self._asked = 0  # `get` calls begun
        self._put_count = 0  # items put, counted under the queue's own mutex (`_put`)
        self._turn = threading.Condition()
        self._mine = threading.local()  # the number of the item the current thread put last

    def _put(self, item: QueueItem) -> None:
        super()._put(item)
        self._put_count += 1
        self._mine.number = self._put_count

    def put(self, item: QueueItem, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if not isinstance(item, Record | AirbyteMessage):  # the engine's own items end a task: nothing follows
            return  # (and the main thread takes the last item of a read without coming back)
        number = self._mine.number
        with self._turn:
            self._turn.wait_for(lambda: self._asked > number)

    def get(self, block: bool = True, timeout: float | None = None) -> QueueItem:
        with self._turn:
            self._asked += 1
            self._turn.notify_all()
        return super().get(block, timeout)


class AheadOfOutput(HandOff):
    """A worker's `put` waits only while the records not yet written hold `budget` bytes (AHEAD_BYTES); one record
    larger than that still goes when the queue holds no other."""

    def __init__(self, budget: int | None = None) -> None:
        super().__init__()
        self._budget = AHEAD_BYTES if budget is None else budget
        self._held = 0  # bytes of the records in the queue
        self._sizes: deque[int] = deque()  # of each item in the queue, in its order

    def put(self, item: QueueItem, block: bool = True, timeout: float | None = None) -> None:
        size = _size(item)
        with self.not_full:
            self.not_full.wait_for(lambda: self._held == 0 or self._held + size <= self._budget)
            self._held += size
            self._put(item)
            self._sizes.append(size)
            self.unfinished_tasks += 1
            self.not_empty.notify()

    def _get(self) -> QueueItem:
        item = super()._get()
        self._held -= self._sizes.popleft()
        self.not_full.notify_all()  # under the queue's mutex, which `get` holds: room for one or for many
        return item


def _size(item: QueueItem) -> int:
    """A record's bytes as JSON, which is what it costs the main thread to write and about what it holds; the
    engine's own items and STATE messages count for nothing (a few hundred bytes each, and never many)."""
    return len(msgspec.json.encode(item.data)) if isinstance(item, Record) else 0
