"""What a stream is made of, as it declares it: the parts `base.JmapStream` reads an account with.

- its dialects (dialects.py): the ways a server may offer its objects, the account's capabilities choosing one;
  it gives the data type to read (`jmap.DataType`) and which changed objects belong in the stream. Mail is one
  dialect; the types beyond mail have a standard one and Cyrus's.
- its record shape: an object as rows (`rows_of`), an id as the rows of its deletion (`deletion_rows_of`).
- its ledger (ledger.py): what the destination holds, as far as deleting rows later needs, kept in the
  account's state and applied after any full read.
- its fingerprint: what a setting narrows it to (the email selection), remembered by the state.
- what an update means (`emits_updated_again`, `left_rows_of`): whether an updated object still selected is
  emitted again, and the rows of one that left the selection.
- the blobs of its rows, where it downloads (`email_blobs`, `reads_blobs`, `wanted_of`): the base reads them in one
  window of Blob/get batches and downloads (downloads.py) and makes each row's record when its blob is in.

A stream overrides none of the base's record path: one path applies these parts for every stream, so a fix to the
order of records, the ledger or the 404 check is made once.

File mode is not declared here: the configured stream says it at read time (`engine.PartitionedStream.start`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..failures import config_error
from ..jmap import DataType, JmapClient, Sync
from ..jmap.errors import JmapMethodError
from ..jmap.policy import Action, resolve
from .dialects import Dialect
from .downloads import Wanted
from .engine import UPDATED_AT, PartitionedStream, Record
from .ledger import Ledger, MalformedMemo

DELETED_AT = "_ab_cdc_deleted_at"


@dataclass(frozen=True)
class EmailBlobs:
    """What a stream's rows may need: a blob of an email each (a message, an attachment's content), which the
    base asks for once the page's Email/get said their sizes. A 404 is checked by asking for the email
    (`downloads.checked_in_order`). `noun` names what a Blob/get batch brings in a log line ("messages"), and
    `threads` the download threads ("raw-message")."""

    noun: str
    threads: str


class DeclaredStream(PartitionedStream):
    """A stream's declared parts, and the per-account choices made from them."""

    # What the destination holds, as far as deleting its rows later needs (ledger.py): kept per account in its
    # state, applied after any full read.
    ledger: ClassVar[type[Ledger]] = Ledger

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]]) -> None:
        super().__init__(client, accounts)
        self._chosen: dict[str, Dialect | None] = {}  # per account: the dialect it offers (`dialect`)
        self._ledgers: dict[str, Ledger] = {}  # per account, for the read under way

    # The ways a server may offer the stream's objects, most preferred first; each account's capabilities choose.
    dialects: ClassVar[tuple[Dialect, ...]] = ()
    # What an account without any of the dialects is missing, for the log line.
    missing: ClassVar[str] = ""

    def fingerprint(self) -> dict[str, Any] | None:
        """What the stream covers, where a setting narrows it (the email selection: start_date and mailbox filters):
        the state remembers it, so that a changed one imports again instead of leaving out, for good, what it now
        covers. None: the stream covers the whole type."""
        return None

    def dialects_of(self, account_id: str) -> tuple[Dialect, ...]:
        """The stream's dialects for an account (mail streams build theirs from the selection)."""
        return self.dialects

    def dialect(self, account_id: str) -> Dialect | None:
        """The dialect the account offers, chosen once: `selects` asks it for every changed object."""
        if account_id not in self._chosen:
            account = self._client.session.accounts.get(account_id)
            self._chosen[account_id] = None if account is None else next(
                (dialect for dialect in self.dialects_of(account_id) if account.has(dialect.capability)), None)
        return self._chosen[account_id]

    def data_type(self, account_id: str) -> DataType:
        """What the stream reads in an account: the JMAP type, properties, arguments and query."""
        dialect = self.dialect(account_id)
        assert dialect is not None, "supports_account said so before any read"
        return dialect.data_type

    def supports_account(self, account_id: str) -> bool:
        if self.dialect(account_id) is not None:
            return True
        capabilities = " or ".join(dialect.capability for dialect in self.dialects_of(account_id))
        self.logger.info("%s: account %s has no %s capability%s; nothing to read", self.name, account_id,
                         capabilities, f" ({self.missing})" if self.missing else "")
        return False

    def probe(self, account_id: str) -> None:
        """Ask the server for one page of what a read of this account will ask for, and check the answer; as a read
        does, take a capability the server names but does not serve as one it does not offer."""
        try:
            Sync(self._client, self.data_type(account_id), account_id, self.name, self.logger).probe()
        except JmapMethodError as error:
            if not self._unserved(account_id, error):
                raise

    def selects(self, account_id: str, obj: Record) -> bool:
        """Whether a created or updated object belongs in the stream: the import's filter, applied to changes."""
        dialect = self.dialect(account_id)
        return dialect is not None and dialect.selects(obj)

    def ledger_of(self, account_id: str) -> Ledger:
        """The account's ledger for the read under way (`_read_account` makes it)."""
        return self._ledgers[account_id]

    def _start_ledger(self, account_id: str, memo: Any) -> None:
        """The account's ledger, from the saved memo (None: a full read starts); a malformed one is a config error."""
        self._ledgers[account_id] = ledger = self.ledger(self.name, account_id, self.logger)
        try:
            ledger.restore(memo)
        except MalformedMemo as error:
            raise config_error(f"The saved state of stream '{self.name}' has a malformed memo for account "
                               f"{account_id!r} ({error}); reset the stream to import it again") from None

    def _unserved(self, account_id: str, error: JmapMethodError) -> bool:
        dialect = self.dialect(account_id)
        return dialect is not None and dialect.unserved_is_absent and resolve(error).action is Action.NOT_OFFERED

    def rows_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """The rows of one JMAP object: the object itself, with its account and read time."""
        obj["accountId"] = account_id
        obj[UPDATED_AT] = fetched_at
        return [obj]

    def deletion_rows_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        """The rows that tell a destination an object is gone: its keys and `_ab_cdc_deleted_at`."""
        return [{"accountId": account_id, "id": object_id, UPDATED_AT: fetched_at, DELETED_AT: fetched_at}]

    # --- what an update means -----------------------------------------------------------------------------

    def emits_updated_again(self) -> bool:
        """Whether an object `/changes` reports updated that is still selected is emitted again: yes, since a
        destination that deduplicates keeps the latest row WHOLE. A stream of content that never changes says
        when an update may bring an object into the selection, the only case where its rows must go out again."""
        return True

    def left_rows_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """The rows of an updated object that is out of the selection (moved to an excluded mailbox): gone from
        the destination's view, it is deleted by its id. The object was fetched: a stream whose rows are keyed
        by more than the id may delete exactly its own."""
        return self.deletion_rows_of(account_id, obj["id"], fetched_at)

    # --- the blobs of rows --------------------------------------------------------------------------------

    # Where the stream's rows may need blobs of emails: read in the base's one window (`JmapStream._windowed`).
    email_blobs: ClassVar[EmailBlobs | None] = None

    def reads_blobs(self) -> bool:
        """Whether this read downloads its rows' blobs (`wanted_of`): wherever the stream declares `email_blobs`
        (a stream that downloads only in file mode says so)."""
        return self.email_blobs is not None

    def wanted_of(self, account_id: str, obj: Record, row: Record) -> Wanted[Record] | None:
        """The blob a row of `obj` needs and how its record is made from it (`downloads.Wanted`), or None: the row
        goes out as it is. Asked in the reading thread as the window takes the row; `make` runs in a worker."""
        return None
