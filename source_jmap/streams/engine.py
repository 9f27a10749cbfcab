"""A stream on the CDK's concurrent engine: its declaration to Airbyte, the read's set-up, one partition per account.

`base.py` turns an account's pages into records and checkpoints (`_read_account`); this side hands them over:
records to the partition, STATEs and traces onto the queue between them (`partitions.StateOut`).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from queue import Queue
from typing import Any, ClassVar, NamedTuple

from airbyte_cdk.models import AirbyteMessage, AirbyteStream, ConfiguredAirbyteStream, SyncMode
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.sources.streams.concurrent.availability_strategy import StreamAvailability
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.types import QueueItem
from airbyte_cdk.sources.utils import files_directory
from airbyte_cdk.sources.utils.schema_helpers import ResourceSchemaLoader

from ..failures import config_error, traced
from ..jmap import JmapClient, JmapError
from .partitions import AccountPartition, PageCursor, StateOut, as_exception
from .staging import FileRecord, flush_to_disk
from .state import AccountState, AccountStates, InvalidStreamState

UPDATED_AT = "_ab_cdc_updated_at"

Record = dict[str, Any]


class Checkpoint(NamedTuple):
    """The account's state moves to `state` here: every record before it is covered by it."""

    account_id: str
    state: AccountState


class PartitionedStream(AbstractStream):
    """An Airbyte stream read one partition per account; `_read_account` says what an account yields."""

    primary_key: ClassVar[list[str]] = ["accountId", "id"]
    # The time the connector read this version of the object. Destinations that
    # deduplicate keep the row with the greatest cursor, so a later update or
    # deletion always wins over an earlier read of the same object.
    cursor_field = UPDATED_AT
    # Whether the stream is declared file-based (Airbyte file transfer): when the configured stream
    # has `include_files`, `self._staging` is the staging directory and its records may be FileRecords.
    file_based: ClassVar[bool] = False

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]]) -> None:
        self._client = client
        self._accounts = accounts
        self._states = AccountStates()
        self._staging: Path | None = None  # set by `start` when a file-based stream is configured to include files
        self._incremental = False  # set by `start`: only an incremental read writes states ahead of a page
        self._read_ahead = False  # set by `start`: each next page is asked for while the one before is used
        self._saved: Mapping[str, Any] = {}  # the state the read starts from, checked by `generate_partitions`
        self._out: StateOut | None = None  # where the read's STATEs go: the queue of its records (`start`)
        self._airbyte_stream: AirbyteStream | None = None

    def supports_account(self, account_id: str) -> bool:
        """Whether the account can serve this stream; one that cannot yields nothing and says why."""
        return True

    @abstractmethod
    def _read_account(
        self, account_id: str, saved: AccountState | None,
    ) -> Generator[Record | AirbyteMessage | Checkpoint]:
        """An account's records, with the checkpoints that cover them and ESTIMATE traces, in order."""

    # --- Airbyte ----------------------------------------------------------------------------

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"airbyte.streams.{self.name}")

    def get_json_schema(self) -> Mapping[str, Any]:
        return ResourceSchemaLoader("source_jmap").get_schema(self.name)

    def as_airbyte_stream(self) -> AirbyteStream:
        """As the classic CDK declared it (incremental, resumable, its cursor and keys), file-based where it is;
        made once: the CDK asks again for each stream status."""
        if self._airbyte_stream is None:
            self._airbyte_stream = AirbyteStream(
                name=self.name, json_schema=dict(self.get_json_schema()),
                supported_sync_modes=[SyncMode.full_refresh, SyncMode.incremental], is_resumable=True,
                source_defined_cursor=True, default_cursor_field=[UPDATED_AT],
                source_defined_primary_key=[[key] for key in self.primary_key],
            )
            if self.file_based:
                self._airbyte_stream.is_file_based = True
        return self._airbyte_stream

    def log_stream_sync_configuration(self) -> None:
        self.logger.debug("Syncing stream %s", self.name)

    @property
    def cursor(self) -> Cursor:
        return PageCursor()

    def check_availability(self) -> StreamAvailability:
        return StreamAvailability.available()

    def start(self, configured_stream: ConfiguredAirbyteStream, saved: Mapping[str, Any],
              queue: Queue[QueueItem], read_ahead: bool = False) -> None:
        """Prepare a read: its mode, file mode (`include_files`, which only the configured stream says), the
        state it starts from, the queue its records go through, which its STATEs take too, and whether an
        account's next page is asked for while the one before is used (jmap/ahead.py)."""
        include_files = self.file_based and bool(configured_stream.include_files)
        self._staging = Path(files_directory.get_files_directory()) if include_files else None
        self._incremental = configured_stream.sync_mode == SyncMode.incremental
        self._read_ahead = read_ahead
        self._saved = saved
        self._out = StateOut(self.name, self._states, queue)

    @property
    def state(self) -> MutableMapping[str, Any]:
        return self._states.get_stream_state()

    @state.setter
    def state(self, value: MutableMapping[str, Any]) -> None:
        try:
            self._states.set_initial_state(value)
        except InvalidStreamState as error:
            raise config_error(
                f"The saved state of stream '{self.name}' was not written by this connector ({error}); "
                "reset the stream to import it again"
            ) from None

    def generate_partitions(self) -> Iterable[Partition]:
        """One partition per account read, after the state the read starts from: a STATE before any record.

        Run by a worker: a state this connector did not write, or accounts that cannot be listed, fail the
        stream (a TRACE of their own type), not the read."""
        try:
            return self._partitions()
        except Exception:
            raise  # as it is: `from` itself would make the error its own cause
        except BaseException as error:
            raise as_exception(error) from error

    def _partitions(self) -> list[Partition]:
        self.state = dict(self._saved)
        if self._saved:
            self._out_().started()
        if self._staging is not None:
            self.logger.info("%s: file mode: each record's file is written under %s", self.name, self._staging)
        try:
            account_ids = self._accounts()
        except JmapError as error:
            raise traced(error) from None
        for gone in sorted(set(self._states.account_ids()) - set(account_ids)):
            self.logger.warning(
                "%s: account %s has a saved state but is not read now (gone, no longer shared, without mail "
                "capability, or not selected); its state is kept and its rows stay in the destination",
                self.name, gone,
            )
        return [AccountPartition(self, account_id) for account_id in account_ids]

    def read_account(self, account_id: str) -> Iterator[Record]:
        """An account's records, for its partition; its STATEs and ESTIMATE traces go out between them.

        They go straight on the queue the records take, from the thread that reads the account: a STATE put
        when the generator resumes after a page's last record follows that record (the CDK's reader put it
        first), and one written ahead of a page precedes the page's first record. In file mode the files of the
        records before a STATE are flushed to disk first: no state covers a file a crash could lose.
        """
        out = self._out_()
        saved = self._states.get(account_id) if self._incremental else None
        try:
            if not self.supports_account(account_id):
                return
            items = self._read_account(account_id, saved)
            files = False  # a record with a file went out since the last STATE
            try:
                for item in items:
                    if isinstance(item, Checkpoint):
                        if files:
                            flush_to_disk()
                            files = False
                        out.checkpoint(item.account_id, item.state)
                    elif isinstance(item, AirbyteMessage):
                        out.put(item)
                    else:
                        files = files or isinstance(item, FileRecord)
                        yield item
                    if self._client.cancelled:  # the read was stopped while this was handed over
                        return
            finally:
                # As when the classic CDK closed a stream's generator: the page's downloads under way finish, and
                # no request follows (`JmapClient.cancel`).
                items.close()
        except JmapError as error:
            raise traced(error) from None

    def _out_(self) -> StateOut:
        assert self._out is not None, "start() prepares a read"
        return self._out
