"""A stream's read on the CDK's concurrent engine: one partition per account, STATEs in order with the records.

The engine's worker threads read partitions side by side and put their records on one queue, which the main
thread empties into the output. A STATE must come out after every record it covers and before any it does not,
which the CDK's message repositories do not keep: their STATEs go through a second queue that the main thread
empties after any record, so one overtook records of its page or lagged behind the next page's (measured by
bench/cdk_page_state_order.py on branch cdk-concurrent). So the thread that reads an account puts each STATE
on the records' own queue itself, between the records, and under the stream's lock: one account's part of
the state is replaced, the whole is taken and put on the queue in one step, so STATEs of accounts read side
by side never go back. The main thread never takes that lock (a worker holding it may wait for room on the
queue, which only the main thread makes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, MutableMapping
from queue import Queue
from typing import TYPE_CHECKING, Any

from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteStateBlob,
    AirbyteStateMessage,
    AirbyteStateType,
    AirbyteStreamState,
    StreamDescriptor,
    Type,
)
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.types import QueueItem
from airbyte_cdk.sources.types import Record

from .staging import FileRecord
from .state import AccountState, AccountStates

if TYPE_CHECKING:
    from .engine import PartitionedStream


class StateOut:
    """A stream's STATE messages, put on the queue of its records by the thread that reads an account."""

    def __init__(self, stream: str, states: AccountStates, queue: Queue[QueueItem]) -> None:
        self._stream = stream
        self._states = states
        self._queue = queue
        self._lock = threading.Lock()
        self._last: Mapping[str, Any] = {}

    def started(self) -> None:
        """The state the read starts from, before any record: it counts as emitted (a later page's state that
        equals it is not emitted again)."""
        with self._lock:
            self._emit()

    def checkpoint(self, account_id: str, state: AccountState) -> None:
        """The account's state is `state` from here on; the stream's STATE goes out when it changed."""
        with self._lock:
            self._states.put(account_id, state)
            if self._states.get_stream_state() != self._last:
                self._emit()

    def put(self, message: AirbyteMessage) -> None:
        """A message in its place among the records (an ESTIMATE trace)."""
        self._queue.put(message)

    def _emit(self) -> None:
        self._last = state = self._states.get_stream_state()
        self._queue.put(AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage(
            type=AirbyteStateType.STREAM,
            stream=AirbyteStreamState(stream_descriptor=StreamDescriptor(name=self._stream),
                                      stream_state=AirbyteStateBlob(state)),
        )))


class AccountPartition(Partition):
    """One account of one stream."""

    def __init__(self, stream: PartitionedStream, account_id: str) -> None:
        self._stream = stream
        self._account_id = account_id

    def read(self) -> Iterable[Record]:
        name = self._stream.name
        try:
            for record in self._stream.read_account(self._account_id):
                # The reference to a record's file goes with it (the classic StreamFacade drops it).
                reference = record.file_reference if isinstance(record, FileRecord) else None
                yield Record(data=dict(record) if reference else record, stream_name=name, file_reference=reference)
        except GeneratorExit:
            raise
        except Exception:
            raise  # as it is: `from` itself would make the error its own cause
        except BaseException as error:
            raise as_exception(error) from error

    def to_slice(self) -> Mapping[str, Any] | None:
        return {"account_id": self._account_id}

    def stream_name(self) -> str:
        return self._stream.name

    def __hash__(self) -> int:
        return hash((self._stream.name, self._account_id))


class PageCursor(Cursor):
    """The engine's cursor of a stream, which has nothing to do: partitions checkpoint each page themselves.

    The engine calls `ensure_at_least_one_state_emitted` on the main thread at the end of a stream; a stream
    whose state never changed emits no STATE, as the classic CDK did not.
    """

    @property
    def state(self) -> MutableMapping[str, Any]:
        return {}

    def observe(self, record: Record) -> None:
        pass

    def close_partition(self, partition: Partition) -> None:
        pass

    def ensure_at_least_one_state_emitted(self) -> None:
        pass

    def should_be_synced(self, record: Record) -> bool:
        return True


def as_exception(error: BaseException) -> Exception:
    """What a worker raises, as an Exception: the engine reports only those, and the main thread would wait for
    ever on a partition that ended with any other (the simulation's Hung, a BaseException, did so)."""
    return error if isinstance(error, Exception) else RuntimeError(f"{type(error).__name__}: {error}")
