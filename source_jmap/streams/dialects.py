"""JMAP types beyond mail, which servers offer under a standard capability or under Cyrus's own.

A stream over such a type lists its dialects, most preferred first; each account's capabilities
(`accountCapabilities` in the session) pick the first it offers. An account that offers none yields
nothing for the stream and one log line saying why; the sync goes on.

Each such stream keeps the ids the destination holds in its state ("memo": {"ids": [...]}), as long
as they fit the state's budget (MEMO_BUDGET_BYTES: a STATE stays under 4 KB per account, re-emitted at
every checkpoint). An account with more objects keeps {"overflow": true} instead, until a full read
finds them few enough again, and a warning says what that costs. When an incremental sync has to read
a type again in full (a state the server rejects: Cyrus answers cannotCalculateChanges to
CalendarEvent/changes once a calendar was deleted; or a type without `/changes`: Cyrus's Quota and
SieveScript), the ids that the new read did not bring are emitted as deleted at its end, so the
destination loses what the server lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from airbyte_cdk.models import AirbyteMessage, SyncMode

from ..failures import config_error
from ..jmap import DataType, JmapClient, Page
from ..jmap.errors import JmapMethodError
from .base import JmapStream, Record
from .state import AccountState

# The capabilities, as sessions name them (RFC 9610, JMAP Calendars, RFC 9425, RFC 9661; Cyrus 3.x).
CONTACTS = "urn:ietf:params:jmap:contacts"
CALENDARS = "urn:ietf:params:jmap:calendars"
QUOTA = "urn:ietf:params:jmap:quota"
SIEVE = "urn:ietf:params:jmap:sieve"
CYRUS_CONTACTS = "https://cyrusimap.org/ns/jmap/contacts"
CYRUS_CALENDARS = "https://cyrusimap.org/ns/jmap/calendars"
CYRUS_QUOTA = "https://cyrusimap.org/ns/jmap/quota"
CYRUS_SIEVE = "https://cyrusimap.org/ns/jmap/sieve"

# What `check` reports for each account: a label and the capabilities behind it, standard first.
REPORTED = (
    ("contacts", (CONTACTS, CYRUS_CONTACTS)),
    ("calendars", (CALENDARS, CYRUS_CALENDARS)),
    ("quota", (QUOTA, CYRUS_QUOTA)),
    ("sieve", (SIEVE, CYRUS_SIEVE)),
)


# Room for the ids in an account's STATE: with the JMAP state and the selection, under 4 KB (issue 13:
# a state is re-emitted at every checkpoint, so it must not grow with the account). Cyrus's contact ids
# are UIDs of ~36 characters: about 75 ids.
MEMO_BUDGET_BYTES = 3000


def _fits(ids: set[str], unseen: set[str]) -> bool:
    return sum(len(object_id) + 3 for object_id in ids | unseen) <= MEMO_BUDGET_BYTES


def _everything(obj: Record) -> bool:
    return True


@dataclass(frozen=True)
class Dialect:
    """One way a server offers a stream's objects: the capability that must be there, what to read,
    and which created or updated objects belong in the stream (the query's filter, applied to changes)."""

    capability: str
    data_type: DataType
    selects: Callable[[Record], bool] = _everything


class DialectStream(JmapStream):
    """A stream whose JMAP type comes in dialects; the account's capabilities pick one."""

    dialects: ClassVar[tuple[Dialect, ...]]
    # What an account without any of the dialects is missing, for the log line.
    missing: ClassVar[str] = ""

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]]) -> None:
        super().__init__(client, accounts)
        self._known: dict[str, set[str]] = {}  # per account: the ids the destination holds
        self._unseen: dict[str, set[str]] = {}  # per account, during a full read that replaces a state: not seen yet
        self._remembered: set[str] = set()  # accounts whose saved state had a memo: their ids are all known
        self._overflowing: set[str] = set()  # accounts with more ids than the state can hold: none are known

    def dialect(self, account_id: str) -> Dialect | None:
        account = self._client.session.accounts.get(account_id)
        if account is None:
            return None
        return next((dialect for dialect in self.dialects if account.has(dialect.capability)), None)

    def data_type(self, account_id: str) -> DataType:
        dialect = self.dialect(account_id)
        assert dialect is not None  # supports_account said so before any read
        return dialect.data_type

    def supports_account(self, account_id: str) -> bool:
        if self.dialect(account_id) is not None:
            return True
        capabilities = " or ".join(dialect.capability for dialect in self.dialects)
        self.logger.info("%s: account %s has no %s capability%s; nothing to read", self.name, account_id,
                         capabilities, f" ({self.missing})" if self.missing else "")
        return False

    def selects(self, account_id: str, obj: Record) -> bool:
        dialect = self.dialect(account_id)
        return dialect is not None and dialect.selects(obj)

    def probe(self, account_id: str) -> None:
        """As a read does, take a capability the server names but does not serve as one it does not offer."""
        try:
            super().probe(account_id)
        except JmapMethodError as error:
            if error.error_type != "unknownMethod":
                raise

    def _read_account(self, account_id: str, saved: AccountState | None,
                      sync_mode: SyncMode) -> Iterator[Record | AirbyteMessage]:
        """A capability the server names but does not serve is one it does not offer.

        Cyrus without `jmap_nonstandard_extensions` lists its sieve capability yet answers SieveScript/get
        with unknownMethod. That comes with the first request, before any record.
        """
        try:
            yield from super()._read_account(account_id, saved, sync_mode)
        except JmapMethodError as error:
            if error.error_type != "unknownMethod":
                raise
            self.logger.info("%s: account %s: the server lists %s but has no %s; nothing to read", self.name,
                             account_id, self.data_type(account_id).using[0], error.method)

    # --- the ids the destination holds, for the deletions a full read finds --------------------

    def records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        self._known.setdefault(account_id, set()).add(obj["id"])
        self._unseen.get(account_id, set()).discard(obj["id"])
        return super().records_of(account_id, obj, fetched_at)

    def deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        """No deletion for an id the destination never got from this stream (an RFC 9610 group destroyed,
        which `ContactCard/changes` also reports to contacts), once a saved memo says what it holds."""
        known = self._known.get(account_id, set())
        if account_id in self._remembered and object_id not in known | self._unseen.get(account_id, set()):
            return []
        known.discard(object_id)
        return super().deleted_records_of(account_id, object_id, fetched_at)

    def extra_state(self, account_id: str) -> dict[str, Any] | None:
        known, unseen = self._known.get(account_id, set()), self._unseen.get(account_id, set())
        if account_id in self._overflowing or not _fits(known, unseen):
            if account_id not in self._overflowing:
                self._overflowing.add(account_id)
                self.logger.warning(
                    "%s: account %s holds more objects than the state can list within %d bytes; deletions that "
                    "only a full read can find (a calendar deleted, a state the server rejects) are not "
                    "detected for it until it holds fewer: a full refresh of the stream removes them",
                    self.name, account_id, MEMO_BUDGET_BYTES,
                )
            return {"overflow": True}
        memo: dict[str, Any] = {"ids": sorted(known)}
        if unseen:
            memo["unseen"] = sorted(unseen)
        return memo

    def restore_extra_state(self, account_id: str, extra: dict[str, Any] | None) -> None:
        """None: a full read starts; what the destination held is unseen until the read brings it."""
        if extra is None:
            self._unseen[account_id] = self._known.pop(account_id, set())
            self._overflowing.discard(account_id)  # a full read counts the account's objects again
            return
        if extra.get("overflow") is True:
            self._overflowing.add(account_id)
            return
        ids, unseen = extra.get("ids", []), extra.get("unseen", [])
        for name, value in (("ids", ids), ("unseen", unseen)):
            if not isinstance(value, list) or not all(isinstance(object_id, str) for object_id in value):
                raise config_error(
                    f"The saved state of stream '{self.name}' has a malformed memo for account {account_id!r} "
                    f"({name} is not a list of ids); reset the stream to import it again"
                )
        self._known[account_id], self._unseen[account_id] = set(ids), set(unseen)
        self._remembered.add(account_id)

    def _records(self, account_id: str, page: Page, fetched_at: str) -> Iterator[Record]:
        """A page's records; after the last page of a full read, a deletion for each id it did not bring."""
        yield from super()._records(account_id, page, fetched_at)
        if page.imported and page.resume is None and (gone := sorted(self._unseen.get(account_id, ()))):
            self.logger.info("%s: account %s: %d object(s) gone since the last sync, found by reading them all",
                             self.name, account_id, len(gone))
            for object_id in gone:
                yield from self.deleted_records_of(account_id, object_id, fetched_at)
        if page.imported and page.resume is None:
            self._unseen.pop(account_id, None)


def offered(account_capabilities: dict[str, object]) -> str:
    """One line: which of the non-mail capabilities an account offers, and in which dialect."""
    parts = []
    for label, (standard, cyrus) in REPORTED:
        if standard in account_capabilities:
            parts.append(f"{label} ({standard})")
        elif cyrus in account_capabilities:
            parts.append(f"{label} (Cyrus: {cyrus})")
        else:
            parts.append(f"{label}: none")
    return ", ".join(parts)
