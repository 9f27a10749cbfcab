"""A read on the CDK's concurrent engine: streams and accounts side by side, stopped whole when the read is.

`ConcurrentSource` reads the partitions (a stream in an account, streams/partitions.py) on a pool of worker
threads and yields what they put on one queue; the main thread blocks on that queue without a timeout, so
the client's own deadlines (request_timeout_seconds, per attempt) are what bound a read. However many
workers, the client keeps at most the server's maxConcurrentRequests requests and downloads under way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, Queue

from airbyte_cdk.models import AirbyteMessage, AirbyteStateMessage, ConfiguredAirbyteStream
from airbyte_cdk.sources.concurrent_source.concurrent_source import ConcurrentSource
from airbyte_cdk.sources.concurrent_source.thread_pool_manager import ThreadPoolManager
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import InMemoryMessageRepository
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.sources.streams.concurrent.partitions.types import QueueItem
from airbyte_cdk.sources.types import Record
from airbyte_cdk.sources.utils.slice_logger import DebugSliceLogger

from .config import JmapConfig
from .jmap import JmapClient, JmapError
from .streams.base import JmapStream

# How often a stopped read looks whether its workers are done, while it empties the queue they may wait on.
STOP_POLL_SECONDS = 0.01


def read_concurrently(
    client: JmapClient, config: JmapConfig, selected: list[tuple[JmapStream, ConfiguredAirbyteStream]],
    state: list[AirbyteStateMessage] | None, logger: logging.Logger,
) -> Iterator[AirbyteMessage]:
    """The messages of a read of `selected` streams, each from its saved state in `state`.

    A read that is stopped (its generator closed: a killed sync, the simulation's kill) stops its workers
    before it returns: they send no request after that, so nothing keeps talking to the server.
    """
    if not selected:  # the engine loops for ever on no stream
        return
    saved = ConnectorStateManager(state)
    queue = HandOff()
    for stream, configured in selected:
        stream.start(configured, saved.get_stream_state(stream.name, None), queue)
    workers = _workers(client, config)
    logger.info("Reading %d streams, %d partitions at once", len(selected), workers)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="partition")
    threads = ThreadPoolManager(pool, logger)
    # One thread lists partitions (a stream's accounts) at a time: with more, the engine needs more workers
    # than partition generators, and listing is quick (the accounts are listed once for every stream).
    engine = ConcurrentSource(threads, logger, DebugSliceLogger(), queue, InMemoryMessageRepository(), 1)
    streams: list[AbstractStream] = [stream for stream, _ in selected]
    try:
        yield from engine.read(streams)
    finally:
        _stop(client, pool, threads, queue)


class HandOff(Queue[QueueItem]):
    """The engine's queue, on which a worker's `put` returns only once the main thread took the item and came
    back for the next one: a worker goes no further than the output, as a classic stream's generator did.

    So a read stopped after a message (a killed sync; the simulation's kill) has sent no request past it, and a
    read with one worker asks the server the same things in the same order every time: the simulation replays a
    seed's history exactly. Nothing waits in memory but the one item handed over (a record holds up to
    max_raw_message_bytes). The workers still fetch side by side; only their handing over takes turns, and the
    main thread has nothing else to do. One thread takes (the main thread): the n-th `get` takes the n-th item.
    """

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


def _workers(client: JmapClient, config: JmapConfig) -> int:
    """The number of partitions read at once; one when the session cannot be had (each stream then fails with
    the reason, as it tries to list its accounts)."""
    if config.num_workers is not None:
        return config.num_workers
    try:
        return config.workers(client.session.limits.max_concurrent_requests)
    except JmapError:
        return 1


def _stop(client: JmapClient, pool: ThreadPoolExecutor, threads: ThreadPoolManager, queue: Queue[QueueItem]) -> None:
    """End every worker: no new request (the client refuses them), no partition not yet started; a worker
    waiting for room on the queue gets it, as what it puts is thrown away. Nothing to do after a whole read."""
    client.cancel()
    pool.shutdown(wait=False, cancel_futures=True)
    while not threads.is_done():
        with contextlib.suppress(Empty):
            queue.get(timeout=STOP_POLL_SECONDS)
    pool.shutdown(wait=True)
