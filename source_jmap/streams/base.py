"""The Airbyte side of a JMAP data type: partitions per account, state and checkpoints, CDC records, failures.

The sync engine (`jmap.sync`) turns a data type into pages; this adapter turns each page into records
and moves the account's state past them once they are out, so a killed sync resumes after the last
page it emitted. A stream declares what it is made of (`declared.py`: dialects, record shape, ledger,
fingerprint); it is read on the CDK's concurrent engine, one partition per account (`partitions.py`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from airbyte_cdk.models import AirbyteMessage

from ..jmap import ChangesPage, ImportPage, JmapClient, Page, ResumePoint, Sync, WholePage, existing_emails
from ..jmap.errors import JmapMethodError
from .declared import DELETED_AT, DeclaredStream
from .downloads import BlobBatches, MissingBlobs, Wanted, checked_in_order
from .engine import UPDATED_AT, Checkpoint, Record
from .progress import ImportProgress
from .state import AccountState

__all__ = ["DELETED_AT", "UPDATED_AT", "Checkpoint", "JmapStream", "Record", "utc_now"]

def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JmapStream(DeclaredStream):
    """A JMAP data type as an Airbyte stream, one partition per account (`engine.py`), made of the parts it
    declares (`declared.py`): an account's pages as records, and the checkpoints that cover them."""

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]]) -> None:
        super().__init__(client, accounts)
        self._estimated_rows = 0
        self._estimate_lock = threading.Lock()  # accounts read side by side add to one estimate
        self._written_ahead: dict[str, frozenset[str]] = {}  # per account: the saved state's pending ids
        # Per account: pending ids the server still had that no full read of this run has brought yet; those its
        # end has not brought are gone or out of the selection (simulation seed many8-1583: an identity written
        # ahead, found by the check, destroyed before the whole read that followed, left in the destination).
        self._unbrought: dict[str, set[str]] = {}
        self._blob_batches = None if self.email_blobs is None else BlobBatches(
            client, self.name, self.email_blobs.noun, self.logger)

    def _records_of(
        self, account_id: str, objects: Iterable[Record], fetched_at: str, updated: bool = False,
    ) -> Iterator[Record]:
        """The records of objects read for the first time, or (`updated`) of objects `/changes` reports updated, in
        order, as they are iterated: rows as they are, or, where the read downloads (`reads_blobs`), each row's
        record once its blob is in (`_windowed`)."""
        rows = self._rows_of(account_id, objects, fetched_at, updated)
        if not self.reads_blobs():
            return (row for _, object_rows in rows for row in object_rows)
        return self._windowed(account_id, rows)

    def _rows_of(
        self, account_id: str, objects: Iterable[Record], fetched_at: str, updated: bool,
    ) -> Iterator[tuple[Record | None, list[Record]]]:
        """Each object with its rows, taken into the account's ledger as it is iterated; an updated one as the
        stream declares an update (`emits_updated_again`, `left_rows_of`): one that left the selection comes
        with None, its rows needing no blob."""
        ledger = self.ledger_of(account_id)
        again = not updated or self.emits_updated_again()
        for obj in objects:
            if updated and not self.selects(account_id, obj):
                ledger.deleted(obj["id"])
                yield None, self.left_rows_of(account_id, obj, fetched_at)
            elif again:
                ledger.brought(obj)
                yield obj, self.rows_of(account_id, obj, fetched_at)

    def _windowed(self, account_id: str, rows: Iterable[tuple[Record | None, list[Record]]]) -> Iterator[Record]:
        """The records of `rows` whose blobs (`wanted_of`) come by Blob/get batches and downloads, run in parallel
        in one sliding window (`downloads.checked_in_order`): in order, but for those whose download answered 404
        at first. The rows are made in the reading thread as the window takes them (the ledger counts them in
        order); a row without a blob goes through the window too, to keep its place."""
        assert self.email_blobs is not None and self._blob_batches is not None, "reads_blobs says so"

        def wanted() -> Iterator[Wanted[Record]]:
            for obj, object_rows in rows:
                if obj is None:
                    if object_rows:
                        yield _as_they_are(object_rows)
                    continue
                for row in object_rows:
                    yield self.wanted_of(account_id, obj, row) or _as_they_are([row])

        missing = MissingBlobs(functools.partial(existing_emails, self._client, account_id), self.logger.info,
                               f"{self.name}: account {account_id}")
        return checked_in_order(self._blob_batches.tasks(account_id, wanted()),
                                self._client.session.limits.max_concurrent_requests, self.email_blobs.threads,
                                missing)

    def _deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        """The records that tell a destination an object is gone, for every id `/changes` reports destroyed, even
        one the destination may never have had (an RFC 9610 group, which `ContactCard/changes` also reports to
        contacts): a deduplicating destination ignores it, and the ledger cannot be trusted to say what was never
        emitted (a memo 0.4.0 wrote from what one incremental sync saw lists only those: skipping the others' deletions
        left a destroyed identity in the destination)."""
        self.ledger_of(account_id).deleted(object_id)
        return self.deletion_rows_of(account_id, object_id, fetched_at)

    def _read_account(
        self, account_id: str, saved: AccountState | None,
    ) -> Generator[Record | AirbyteMessage | Checkpoint]:
        """A capability the server names but does not serve is one it does not offer (policy.py's NOT_OFFERED:
        unknownMethod on any method but `/changes`, which is read whole instead), where the dialect allows it.
        That comes with the first request, before any record."""
        try:
            yield from self._read_offered(account_id, saved)
        except JmapMethodError as error:
            if not self._unserved(account_id, error):
                raise
            self.logger.info("%s: account %s: the server lists %s but has no %s; nothing to read", self.name,
                             account_id, self.data_type(account_id).using[0], error.method)

    def _read_offered(
        self, account_id: str, saved: AccountState | None,
    ) -> Generator[Record | AirbyteMessage | Checkpoint]:
        selection = self.fingerprint()
        pending = saved.pending if saved is not None else None
        if saved is not None and None not in (saved.selection, selection) and saved.selection != selection:
            self.logger.warning(
                "%s: account %s: the email selection changed since the last sync (now %s, was %s); importing "
                "the stream again so that every email it now covers arrives", self.name, account_id,
                selection, saved.selection,
            )
            saved = None
        self._start_ledger(account_id, saved.extra_state if saved else None)
        if saved is None:
            self.ledger_of(account_id).start_full_read()
        incremental = saved is not None and saved.import_progress is None
        progress = ImportProgress(self.name, account_id, self.logger)
        sync = Sync(self._client, self.data_type(account_id), account_id, self.name, self.logger,
                    ahead=self._read_ahead)
        # Written-ahead ids the server still has: carried in every state of this read until its last page, so that a
        # read killed before its /changes list them (as created; deleted if out of the selection) checks them again
        # (simulation seed issue18-2413: killed after the check's STATE, the email moved to Trash was never deleted).
        carried = (yield from self._settle(account_id, sync, pending, saved)) if pending else []
        self._unbrought[account_id] = set(carried)
        pages = sync.pages(saved.state if saved else None, saved.import_progress if saved else None)
        try:
            while (page := next(pages, None)) is not None:
                if not isinstance(page, ChangesPage) and incremental:  # the saved state was of no use: read all again
                    self.ledger_of(account_id).start_full_read()
                    incremental = False
                    if not self.ledger.finds_deletions:
                        self.logger.warning(
                            "%s: account %s: rows of objects destroyed since the last sync cannot be found by "
                            "importing again and stay in the destination; a refresh of the stream removes them",
                            self.name, account_id)
                if (ahead := self._written_ahead_of(account_id, page, selection, carried)) is not None:
                    yield ahead
                if isinstance(page, ImportPage) and page.total is not None:
                    with self._estimate_lock:
                        self._estimated_rows += page.total
                        rows = self._estimated_rows
                    yield progress.estimate(page.total, rows)
                yield from self._emit(account_id, self._records(account_id, page, utc_now()), AccountState(
                    state=page.state, import_progress=page.resume if isinstance(page, ImportPage) else None,
                    selection=selection, pending=carried or None))
                if isinstance(page, ImportPage):
                    progress.advance(page.count)
                # Let this page go before the next one is fetched (read ahead: before the one after it). Peak memory
                # is one page, or two of half the budget (an import's, three of a third: jmap/pairs.py).
                del page
        finally:
            pages.close()  # read ahead: no page is asked for after the one under way, and its thread ends
        if carried and (done := self._states.get(account_id)) is not None:
            yield Checkpoint(account_id, done.model_copy(update={"pending": None}))

    def _written_ahead_of(
        self, account_id: str, page: Page, selection: dict[str, Any] | None, carried: list[str],
    ) -> Checkpoint | None:
        """The state to emit before a page's records when the account's state does not cover them, or None.

        A destination may keep the records a killed run emitted after its last STATE. One of an object the
        saved state does not know, destroyed before the next run, never comes back as a deletion: `/changes`
        since that state leaves out what was created and destroyed since (RFC 8620 section 5.2; Cyrus does),
        and a fresh import does not know what an earlier one emitted (simulation seed h1-73: a killed first
        page of emails, one destroyed, left in the destination for ever). So before such a page the state is
        saved with those ids pending (`_settle` checks them), and before an import's first page its captured
        state, from which the changes after the import report every object of the import that goes away. What the
        stream learns from the page and needs to delete its records later (`learn_ahead`) is saved with it.
        """
        if not self._incremental:
            return None
        if (ledger := self.ledger_of(account_id)).learns_ahead:
            # Read for it, and left in the page to be read again; what the stream does not select has no rows.
            ledger.learn_ahead(obj for obj in page.keep_objects() if self.selects(account_id, obj))
        current = self._states.get(account_id)
        created_ids = page.created_ids if isinstance(page, ChangesPage | WholePage) else ()
        if current is None or (not isinstance(page, ChangesPage) and not created_ids and current.state != page.state):
            start = AccountState(state=page.state, import_progress=ResumePoint(), selection=selection)  # import starts
        else:
            start = current
        ahead = start.model_copy(update={"pending": sorted({*carried, *created_ids}) or None,
                                         "extra_state": ledger.memo()})
        if ahead == current:
            return None
        return Checkpoint(account_id, ahead)

    def _settle(
        self, account_id: str, sync: Sync, pending: list[str], saved: AccountState | None,
    ) -> Generator[Record | Checkpoint, None, list[str]]:
        """Deletions for the ids written ahead of a page of a killed run that the server no longer finds: destroyed
        since, they may be in no /changes (created and destroyed since the saved state). Those it finds come again
        with the changes, as created, and one out of the selection by then as deleted (`_records`); returned."""
        self._written_ahead[account_id] = frozenset(pending)
        found, not_found = sync.fetch(pending)
        fetched_at = utc_now()
        records = (record for gone in not_found for record in self._deleted_records_of(account_id, gone, fetched_at))
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
        if not isinstance(page, ChangesPage):
            unbrought = self._unbrought.get(account_id, set())
            objects = _brought(page.created, unbrought) if unbrought else page.created
            yield from self._records_of(account_id, objects, fetched_at)
            if page.ends_full_read:
                yield from self._full_read_end(account_id, unbrought, fetched_at)
            return
        written_ahead = self._written_ahead.get(account_id, frozenset())
        left: list[Record] = []

        def selected(objects: Iterable[Record]) -> Iterator[Record]:
            for obj in objects:
                if self.selects(account_id, obj):
                    yield obj
                elif obj["id"] in written_ahead:
                    left.append(obj)

        yield from self._records_of(account_id, selected(page.created), fetched_at)
        yield from self._records_of(account_id, iter(left), fetched_at, updated=True)
        yield from self._records_of(account_id, page.updated, fetched_at, updated=True)
        for object_id in page.destroyed:
            yield from self._deleted_records_of(account_id, object_id, fetched_at)

    def _full_read_end(self, account_id: str, unbrought: set[str], fetched_at: str) -> Iterator[Record]:
        """After any full read, a deletion for each object it did not bring that a killed run's page was written
        ahead of (found then, gone since), then for each the ledger held (`Ledger.unseen`)."""
        for gone in sorted(unbrought):
            yield from self._deleted_records_of(account_id, gone, fetched_at)
        unbrought.clear()
        if unseen := self.ledger_of(account_id).unseen():
            self.logger.info("%s: account %s: %d object(s) gone since the last sync, found by reading them all",
                             self.name, account_id, len(unseen))
            for object_id in unseen:
                yield from self.deletion_rows_of(account_id, object_id, fetched_at)

    def _emit(self, account_id: str, records: Iterable[Record], state: AccountState) -> Iterator[Record | Checkpoint]:
        """A page's records, then the account's state past them.

        Records may be produced lazily (raw messages): the ledger's memo is taken once every record was produced.
        In file mode every file of the page is written by then (the engine flushes them to disk before the state
        goes out, `PartitionedStream.read_account`).
        A page without records (a /changes page of deletions the stream held no rows for) moves the state at
        once: the classic CDK's reader emitted it after the NEXT page's first record, which it does not cover
        (simulation seed big-6453 committed an attachment row created after that state).
        """
        yield from records
        yield Checkpoint(account_id, state.model_copy(update={"extra_state": self.ledger_of(account_id).memo()}))


def _as_they_are(rows: list[Record]) -> Wanted[Record]:
    """Rows that need no blob, as a task of the window: their place in the order is kept."""
    return Wanted(lambda _content: rows, None, 0, "", "rows without a blob")


def _brought(objects: Iterable[Record], unbrought: set[str]) -> Iterator[Record]:
    for obj in objects:
        unbrought.discard(obj["id"])
        yield obj
