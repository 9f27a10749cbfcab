"""A read on the CDK's concurrent engine: streams and accounts side by side, stopped whole when the read is.

`ConcurrentSource` reads the partitions (a stream in an account, streams/partitions.py) on a pool of worker
threads and yields what they put on one queue; the main thread blocks on that queue without a timeout, so
the client's own deadlines (request_timeout_seconds, per attempt) are what bound a read. However many
workers, the client keeps at most the server's maxConcurrentRequests requests and downloads under way.

A stream that fails leaves the others to finish; the read then ends with the first failure raised, one TRACE
error in the stream's own words (run.py prints it without a stack trace). The engine would send each failed
stream's error as it happens, log each with its traceback, and end with a summary error of its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, Queue
from typing import NoReturn

from airbyte_cdk.exception_handler import generate_failed_streams_error_message
from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteStateMessage,
    ConfiguredAirbyteStream,
    StreamDescriptor,
    TraceType,
    Type,
)
from airbyte_cdk.sources.concurrent_source.concurrent_source import ConcurrentSource
from airbyte_cdk.sources.concurrent_source.stream_thread_exception import StreamThreadException
from airbyte_cdk.sources.concurrent_source.thread_pool_manager import ThreadPoolManager
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import InMemoryMessageRepository
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.sources.streams.concurrent.partitions.types import QueueItem
from airbyte_cdk.sources.utils.slice_logger import DebugSliceLogger
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from .config import JmapConfig
from .handoff import AheadOfOutput, Lockstep
from .jmap import JmapClient, JmapError
from .pool import RankedPool
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
    workers = _workers(client, config)
    # One worker reads in lockstep with the output (handoff.py), which the simulation's replay of a seed relies on.
    ahead = workers > 1
    queue = AheadOfOutput() if ahead else Lockstep()
    for stream, configured in selected:
        stream.start(configured, saved.get_stream_state(stream.name, None), queue, read_ahead=ahead)
    logger.info("Reading %d streams, %d partitions at once", len(selected), workers)
    # Partitions account by account (`pool.py`) where several are read at once; one worker takes them as the engine
    # lists them, which the simulation's replay of a seed relies on.
    pool = (RankedPool(workers, "partition", [stream.name for stream, _ in selected]) if workers > 1
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="partition"))
    engine_logger = logger.getChild("engine")
    engine_logger.addFilter(WITHOUT_TRACEBACK)
    threads = ThreadPoolManager(pool, engine_logger)
    # One thread lists partitions (a stream's accounts) at a time: with more, the engine needs more workers
    # than partition generators, and listing is quick (the accounts are listed once for every stream).
    engine = ConcurrentSource(threads, engine_logger, DebugSliceLogger(), queue, InMemoryMessageRepository(), 1)
    streams: list[AbstractStream] = [stream for stream, _ in selected]
    try:
        for message in engine.read(streams):
            if not (message.type == Type.TRACE and message.trace and message.trace.type == TraceType.ERROR):
                yield message  # a stream's error is raised at the end instead, the first one only
    except AirbyteTracedException:
        if queue.failure is None:
            raise  # the engine's own
        # else the engine's summary of the failed streams: the first failure says it
    finally:
        _stop(client, pool, threads, queue)
    if queue.failure is not None:
        _raise(queue.failure)


class WithoutTraceback(logging.Filter):
    """The engine's log of a stream's failure in one line, with the failure's message but not its traceback; and
    not its summary of the failed streams, each of which has its line. A failure the connector words is all in
    its TRACE error; a bug's traceback is in that error's stack_trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg, record.args = f"{record.getMessage()}: {record.exc_info[1]}", ()
            record.exc_info, record.exc_text = None, None
        return not record.getMessage().startswith(FAILED_STREAMS)


# How the engine's summary of failed streams begins (its own function says it).
FAILED_STREAMS = generate_failed_streams_error_message({})
WITHOUT_TRACEBACK = WithoutTraceback()


def _raise(failure: StreamThreadException) -> NoReturn:
    """The read's error for a stream's failure: the connector's own words as they are, raised from nothing (run.py
    prints it without a stack trace), or for any other exception the engine's words, raised from it."""
    descriptor = StreamDescriptor(name=failure.stream_name)
    error = failure.exception
    if isinstance(error, AirbyteTracedException):
        raise AirbyteTracedException(internal_message=error.internal_message, message=error.message,
                                     failure_type=error.failure_type, stream_descriptor=descriptor) from None
    raise AirbyteTracedException.from_exception(
        error, descriptor, message=f"An unexpected error occurred in stream {failure.stream_name}: "
                                   f"{type(error).__name__}") from error


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
