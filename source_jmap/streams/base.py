"""The Airbyte side of a JMAP data type: slices per account, state and checkpoints, CDC records, failures.

The sync engine (`jmap.sync`) turns a data type into pages; this adapter turns each page into records
and moves the account's state past them once they are out, so a killed sync resumes after the last
page it emitted. A stream declares what it reads (`data_type`) and how an object becomes records.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from airbyte_cdk.models import AirbyteMessage, AirbyteStream, ConfiguredAirbyteStream, SyncMode
from airbyte_cdk.sources.streams import CheckpointMixin, Stream
from airbyte_cdk.sources.streams.checkpoint import CheckpointReader, Cursor
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.sources.utils import files_directory

from ..failures import config_error, traced
from ..jmap import DataType, JmapClient, JmapError, Page, Sync
from .progress import ImportProgress
from .selection import EmailSelection
from .staging import FileRecord, flush_to_disk
from .state import AccountState, AccountStates, InvalidStreamState

UPDATED_AT = "_ab_cdc_updated_at"
DELETED_AT = "_ab_cdc_deleted_at"

Record = dict[str, Any]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JmapStream(Stream, CheckpointMixin):
    """A JMAP data type as an Airbyte stream, one slice per account."""

    primary_key: ClassVar[list[str]] = ["accountId", "id"]
    # The time the connector read this version of the object. Destinations that
    # deduplicate keep the row with the greatest cursor, so a later update or
    # deletion always wins over an earlier read of the same object.
    cursor_field = UPDATED_AT
    # The CDK asks for a checkpoint after every record but emits one only when the
    # state changed, which happens once per page.
    state_checkpoint_interval = 1
    # Whether the stream is declared file-based (Airbyte file transfer): when the configured stream
    # has `include_files`, `self._staging` is the staging directory and its records may be FileRecords.
    file_based: ClassVar[bool] = False

    def __init__(
        self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection | None = None
    ) -> None:
        self._client = client
        self._accounts = accounts
        # The emails a stream of email data covers; its state remembers it, so that a changed selection
        # imports again instead of leaving out, for good, what it now covers.
        self._selection = selection
        self._states = AccountStates()
        self._estimated_rows = 0
        self._staging: Path | None = None  # set by `read` when a file-based stream is configured to include files
        self._inside_page = False  # between a page's first and last record: no checkpoint (`_emit`)
        self._state_manager: Any = None  # an incremental read's, for the states written ahead of a page
        self._written_ahead: dict[str, frozenset[str]] = {}  # per account: the saved state's pending ids
        self._checkpoints: _BetweenPages | None = None  # the CDK's checkpoints of this read (`_get_checkpoint_reader`)

    # --- what a stream declares -----------------------------------------------------------

    @abstractmethod
    def data_type(self, account_id: str) -> DataType:
        """What the stream reads in an account: the JMAP type, properties, arguments and query."""

    def supports_account(self, account_id: str) -> bool:
        """Whether the account can serve this stream; one that cannot yields nothing and says why."""
        return True

    def probe(self, account_id: str) -> None:
        """Ask the server for one page of what a read of this account will ask for, and check the answer."""
        Sync(self._client, self.data_type(account_id), account_id, self.name, self.logger).probe()

    def selects(self, account_id: str, obj: Record) -> bool:
        """Whether a created or updated object belongs in the stream: the import's filter, applied to changes."""
        return True

    def records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """The records for one JMAP object: the object itself, with its account and read time."""
        obj["accountId"] = account_id
        obj[UPDATED_AT] = fetched_at
        return [obj]

    def new_records(self, account_id: str, objects: Iterable[Record], fetched_at: str) -> Iterator[Record]:
        """The records of objects read for the first time, in order, as they are iterated."""
        return (record for obj in objects for record in self.records_of(account_id, obj, fetched_at))

    def updated_records(self, account_id: str, objects: Iterable[Record], fetched_at: str) -> Iterator[Record]:
        """The records of the objects `/changes` reports as updated, as they are iterated."""
        return (record for obj in objects for record in self.updated_records_of(account_id, obj, fetched_at))

    def updated_records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """The records for an object `/changes` reports as updated.

        A destination that deduplicates keeps the latest row WHOLE, so an updated object is
        emitted whole; one that left the selection (moved to an excluded mailbox) is emitted
        as deleted, since it is gone from the destination's view.
        """
        if self.selects(account_id, obj):
            return self.records_of(account_id, obj, fetched_at)
        return self.deleted_records_of(account_id, obj["id"], fetched_at)

    def deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        """The records that tell a destination an object is gone: its keys and `_ab_cdc_deleted_at`."""
        return [{"accountId": account_id, "id": object_id, UPDATED_AT: fetched_at, DELETED_AT: fetched_at}]

    def extra_state(self, account_id: str) -> dict[str, Any] | None:
        """What the stream keeps for an account besides the JMAP state (saved with each checkpoint)."""
        return None

    def restore_extra_state(self, account_id: str, extra: dict[str, Any] | None) -> None:
        """Take back what `extra_state` saved; None when the stream starts an account from scratch."""

    def learn_ahead(self, account_id: str, page: Page) -> None:
        """Take into the extra state, before a page's records go out, what deleting them later will need; a stream
        that reads the page's objects for it leaves them in the page to be read again."""

    # --- Airbyte ----------------------------------------------------------------------------

    @property
    def source_defined_cursor(self) -> bool:
        return True

    def as_airbyte_stream(self) -> AirbyteStream:
        stream = super().as_airbyte_stream()
        if self.file_based:
            stream.is_file_based = True
        return stream

    def read(  # type: ignore[no-untyped-def]  # the CDK leaves state_manager untyped (a circular import)
        self, configured_stream: ConfiguredAirbyteStream, logger: logging.Logger, slice_logger: Any,
        stream_state: MutableMapping[str, Any], state_manager, internal_config: Any,
    ) -> Iterable[Any]:
        """The CDK hands a classic stream its configured stream here alone: `include_files` is read from it."""
        include_files = self.file_based and bool(configured_stream.include_files)
        self._staging = Path(files_directory.get_files_directory()) if include_files else None
        if self._staging is not None:
            self.logger.info("%s: file mode: each record's file is written under %s", self.name, self._staging)
        self._state_manager = state_manager if configured_stream.sync_mode == SyncMode.incremental else None
        if state_manager and self.state:  # the saved state, before any record (see _get_checkpoint_reader)
            yield self._checkpoint_state(self.state, state_manager=state_manager)
        yield from super().read(configured_stream, logger, slice_logger, stream_state, state_manager,
                                internal_config)

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

    def get_cursor(self) -> Cursor:
        return self._states

    def _get_checkpoint_reader(self, *args: Any, **kwargs: Any) -> CheckpointReader:
        """The state a read starts from counts as emitted: `read` emits it before any record.

        The CDK asks for a checkpoint after every record and emits the state when it differs from the last
        one emitted, which at the first record of a read is none: it emitted the starting state there, after
        a record that state does not cover, and a destination commits that record under it. An object
        created and destroyed before the next sync then never came as a deletion from a server that leaves
        such ids out of /changes (RFC 8620 section 5.2; simulation seed 5-80, a thread left over).
        """
        self._checkpoints = _BetweenPages(super()._get_checkpoint_reader(*args, **kwargs), self._states,
                                          lambda: self._inside_page)
        return self._checkpoints

    def stream_slices(self, **kwargs: Any) -> Iterable[StreamSlice]:
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
        for account_id in account_ids:
            yield StreamSlice(partition={"account_id": account_id}, cursor_slice={})

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Record | AirbyteMessage]:
        """The account's records; one whose content is in a file goes out as a RECORD message with its reference."""
        account_id = (stream_slice or {})["account_id"]
        saved = self._states.get(account_id) if sync_mode == SyncMode.incremental else None
        try:
            if self.supports_account(account_id):
                for record in self._read_account(account_id, saved):
                    yield record.message(self.name) if isinstance(record, FileRecord) else record
        except JmapError as error:
            raise traced(error) from None

    def _read_account(self, account_id: str, saved: AccountState | None) -> Iterator[Record | AirbyteMessage]:
        selection = self._selection.describe() if self._selection else None
        pending = saved.pending if saved is not None else None
        if saved is not None and None not in (saved.selection, selection) and saved.selection != selection:
            self.logger.warning(
                "%s: account %s: the email selection changed since the last sync (now %s, was %s); importing "
                "the stream again so that every email it now covers arrives", self.name, account_id,
                selection, saved.selection,
            )
            saved = None
        self.restore_extra_state(account_id, saved.extra_state if saved else None)
        incremental = saved is not None and saved.import_progress is None
        progress = ImportProgress(self.name, account_id, self.logger)
        sync = Sync(self._client, self.data_type(account_id), account_id, self.name, self.logger)
        # Written-ahead ids the server still has: carried in every state of this read until its last page, so that a
        # read killed before its /changes list them (as created; deleted if out of the selection) checks them again
        # (simulation seed issue18-2413: killed after the check's STATE, the email moved to Trash was never deleted).
        carried = (yield from self._settle(account_id, sync, pending, saved)) if pending else []
        pages = sync.pages(saved.state if saved else None, saved.import_progress if saved else None)
        while (page := next(pages, None)) is not None:
            if page.imported and incremental:  # the saved state was of no use: the stream starts over
                self.restore_extra_state(account_id, None)
                incremental = False
            if (ahead := self._written_ahead_of(account_id, page, selection, carried)) is not None:
                yield ahead
            if page.total is not None:
                self._estimated_rows += page.total
                yield progress.estimate(page.total, self._estimated_rows)
            yield from self._emit(account_id, self._records(account_id, page, utc_now()), AccountState(
                state=page.state, import_progress=page.resume, selection=selection, pending=carried or None))
            if page.count is not None:
                progress.advance(page.count)
            # Let this page go before the next one is fetched: peak memory is one page, not two.
            del page
        if carried and (done := self._states.get(account_id)) is not None:  # the CDK emits it at the slice's end
            self._states.put(account_id, done.model_copy(update={"pending": None}))

    def _written_ahead_of(
        self, account_id: str, page: Page, selection: dict[str, Any] | None, carried: list[str],
    ) -> AirbyteMessage | None:
        """The STATE to emit before a page's records when the account's state does not cover them, or None.

        A destination may keep the records a killed run emitted after its last STATE. One of an object the
        saved state does not know, destroyed before the next run, never comes back as a deletion: `/changes`
        since that state leaves out what was created and destroyed since (RFC 8620 section 5.2; Cyrus does),
        and a fresh import does not know what an earlier one emitted (simulation seed h1-73: a killed first
        page of emails, one destroyed, left in the destination for ever). So before such a page the state is
        saved with those ids pending (`_settle` checks them), and before an import's first page its captured
        state, from which the changes after the import report every object of the import that goes away. What the
        stream learns from the page and needs to delete its records later (`learn_ahead`) is saved with it.
        """
        if self._state_manager is None:
            return None
        self.learn_ahead(account_id, page)
        current = self._states.get(account_id)
        start = current or AccountState(state=page.state, import_progress={}, selection=selection)
        if page.imported and not page.created_ids and start.state != page.state:  # an import starts again
            start = AccountState(state=page.state, import_progress={}, selection=selection)
        ahead = start.model_copy(update={"pending": sorted({*carried, *page.created_ids}) or None,
                                         "extra_state": self.extra_state(account_id)})
        if ahead == current:
            return None
        self._states.put(account_id, ahead)
        assert self._checkpoints is not None  # the CDK made it before the first slice
        self._checkpoints.emitted(self.state)
        return self._checkpoint_state(self.state, state_manager=self._state_manager)

    def _settle(
        self, account_id: str, sync: Sync, pending: list[str], saved: AccountState | None,
    ) -> Generator[Record, None, list[str]]:
        """Deletions for the ids written ahead of a page of a killed run that the server no longer finds: destroyed
        since, they may be in no /changes (created and destroyed since the saved state). Those it finds come again
        with the changes, as created, and one out of the selection by then as deleted (`_records`); returned."""
        self._written_ahead[account_id] = frozenset(pending)
        found, not_found = sync.fetch(pending)
        fetched_at = utc_now()
        records = (record for gone in not_found for record in self.deleted_records_of(account_id, gone, fetched_at))
        still = sorted(obj["id"] for obj in found)
        if saved is None:  # the stream starts over, from a state of its own
            yield from records
        else:
            yield from self._emit(account_id, records, saved.model_copy(update={"pending": still or None}))
        return still

    def _records(self, account_id: str, page: Page, fetched_at: str) -> Iterator[Record]:
        """A page as records: objects imported or created, updated ones, and deletions.

        A created object out of the selection has no record, unless a killed run may have emitted it (written
        ahead): then it is deleted (simulation seed wa2-1077: an email emitted, moved to Trash before the next run,
        which /changes since the saved state lists as created).
        """
        if page.imported:
            yield from self.new_records(account_id, page.created, fetched_at)
            return
        written_ahead = self._written_ahead.get(account_id, frozenset())
        left: list[Record] = []

        def selected(objects: Iterable[Record]) -> Iterator[Record]:
            for obj in objects:
                if self.selects(account_id, obj):
                    yield obj
                elif obj["id"] in written_ahead:
                    left.append(obj)

        yield from self.new_records(account_id, selected(page.created), fetched_at)
        yield from self.updated_records(account_id, iter(left), fetched_at)
        yield from self.updated_records(account_id, page.updated, fetched_at)
        for object_id in page.destroyed:
            yield from self.deleted_records_of(account_id, object_id, fetched_at)

    def _emit(self, account_id: str, records: Iterable[Record], state: AccountState) -> Iterator[Record]:
        """Yield a page's records and move the account's state past them.

        The state is replaced just before the LAST record is handed over: the CDK
        writes that record first and only then looks at the state, so the STATE
        message always follows every record it covers. Records may be produced
        lazily (raw messages), so the last one is found by holding one back, and
        the extra state is taken only once every record was produced. In file mode every file
        of the page is written by then, and is flushed to disk before the state covers it.
        """
        last: Record | None = None
        files = False
        self._inside_page = True
        try:
            for record in records:
                if last is not None:
                    yield last
                last = record
                files = files or isinstance(record, FileRecord)
        finally:
            self._inside_page = False
        if files:
            flush_to_disk()
        self._states.put(account_id, state.model_copy(update={"extra_state": self.extra_state(account_id)}))
        if last is not None:
            yield last


class _BetweenPages(CheckpointReader):
    """The CDK's checkpoints of a stream, none of them inside a page.

    The CDK asks for a checkpoint after each record and emits the state when it changed since the last STATE.
    A page without records (a /changes page of deletions the stream held no rows for) moves the state without a
    record to carry it, so the CDK emitted that state after the NEXT page's first record, which it does not
    cover: simulation seed big-6453 committed an attachment row created after that state, and its email's
    destruction later found no part ids to delete. Inside a page the reader says nothing; between pages, and at
    the end of the slice, the state goes out when it differs from the last one out: the one the read started
    from (`JmapStream.read` emits it first), a page's, or one written ahead of a page (`emitted`). The CDK's own
    reader knew only its own: a state written ahead of the last page, which ended on the state before it (a
    mailbox read whole after changes that changed nothing), was left as the last STATE, its ids still pending.
    """

    def __init__(self, reader: CheckpointReader, states: AccountStates, inside_page: Callable[[], bool]) -> None:
        self._reader = reader  # the CDK's: it walks the slices
        self._states = states
        self._inside_page = inside_page
        self._last: Mapping[str, Any] = states.get_stream_state()

    def next(self) -> Mapping[str, Any] | None:
        return self._reader.next()

    def observe(self, new_state: Mapping[str, Any]) -> None:
        self._reader.observe(new_state)

    def emitted(self, state: Mapping[str, Any]) -> None:
        """A STATE the stream emitted itself, before a page."""
        self._last = state

    def get_checkpoint(self) -> Mapping[str, Any] | None:
        state = self._states.get_stream_state()
        if self._inside_page() or state == self._last:
            return None
        self._last = state
        return state
