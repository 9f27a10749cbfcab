"""JMAP types beyond mail, which servers offer under a standard capability or under Cyrus's own.

A stream over such a type lists its dialects, most preferred first; each account's capabilities
(`accountCapabilities` in the session) pick the first it offers. An account that offers none yields
nothing for the stream and one log line saying why; the sync goes on.

Each such stream keeps the ids the destination holds in its state (held_ids.py): when an incremental
sync has to read a type again in full (a state the server rejects: Cyrus answers cannotCalculateChanges
to CalendarEvent/changes once a calendar was deleted; or a type without `/changes`: Cyrus's Quota and
SieveScript), the ids that the new read did not bring are emitted as deleted at its end.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import ClassVar

from airbyte_cdk.models import AirbyteMessage

from ..jmap import DataType
from ..jmap.errors import JmapMethodError
from ..jmap.policy import Action, resolve
from .base import Checkpoint, Record
from .held_ids import HeldIdsStream
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


def _everything(obj: Record) -> bool:
    return True


@dataclass(frozen=True)
class Dialect:
    """One way a server offers a stream's objects: the capability that must be there, what to read,
    and which created or updated objects belong in the stream (the query's filter, applied to changes)."""

    capability: str
    data_type: DataType
    selects: Callable[[Record], bool] = _everything


class DialectStream(HeldIdsStream):
    """A stream whose JMAP type comes in dialects; the account's capabilities pick one."""

    dialects: ClassVar[tuple[Dialect, ...]]
    # What an account without any of the dialects is missing, for the log line.
    missing: ClassVar[str] = ""

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

    def deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        """No deletion for an id the destination never got from this stream (an RFC 9610 group destroyed,
        which `ContactCard/changes` also reports to contacts)."""
        if not self.holds(account_id, object_id):
            return []
        return super().deleted_records_of(account_id, object_id, fetched_at)

    def probe(self, account_id: str) -> None:
        """As a read does, take a capability the server names but does not serve as one it does not offer."""
        try:
            super().probe(account_id)
        except JmapMethodError as error:
            if resolve(error).action is not Action.NOT_OFFERED:
                raise

    def _read_account(
        self, account_id: str, saved: AccountState | None,
    ) -> Generator[Record | AirbyteMessage | Checkpoint]:
        """A capability the server names but does not serve is one it does not offer (policy.py's NOT_OFFERED:
        unknownMethod on any method but `/changes`, which is read whole instead).

        Cyrus without `jmap_nonstandard_extensions` lists its sieve capability yet answers SieveScript/get
        with unknownMethod. That comes with the first request, before any record.
        """
        try:
            yield from super()._read_account(account_id, saved)
        except JmapMethodError as error:
            if resolve(error).action is not Action.NOT_OFFERED:
                raise
            self.logger.info("%s: account %s: the server lists %s but has no %s; nothing to read", self.name,
                             account_id, self.data_type(account_id).using[0], error.method)


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
