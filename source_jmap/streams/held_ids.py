"""The ids the destination holds, for the deletions only a full read can find.

A stream whose type the server may make it read whole again on an incremental sync (no `/changes`:
Cyrus's Identity, Quota and SieveScript; a state the server rejects: Cyrus answers cannotCalculateChanges
to CalendarEvent/changes once a calendar was deleted) learns of a destroyed object only by its absence
from that read. Such a stream keeps the ids the destination holds in its state ("memo": {"ids": [...]}),
as long as they fit the state's budget (MEMO_BUDGET_BYTES: a STATE stays under 4 KB per account,
re-emitted at every checkpoint). An account with more objects keeps {"overflow": true} instead, until a
full read finds them few enough again, and a warning says what that costs. The ids a full read did not
bring are emitted as deleted at its end, so the destination loses what the server lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..failures import config_error
from ..jmap import JmapClient, Page
from .base import JmapStream, Record

# Room for the ids in an account's STATE: with the JMAP state and the selection, under 4 KB (issue 13:
# a state is re-emitted at every checkpoint, so it must not grow with the account). Cyrus's contact ids
# are UIDs of ~36 characters: about 75 ids.
MEMO_BUDGET_BYTES = 3000


def _fits(ids: set[str], unseen: set[str]) -> bool:
    return sum(len(object_id) + 3 for object_id in ids | unseen) <= MEMO_BUDGET_BYTES


class HeldIdsStream(JmapStream):
    """A stream that remembers, per account, the ids the destination holds (see the module)."""

    finds_deletions_when_read_again = True

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]]) -> None:
        super().__init__(client, accounts)
        self._known: dict[str, set[str]] = {}  # per account: the ids the destination holds
        self._unseen: dict[str, set[str]] = {}  # per account, during a full read that replaces a state: not seen yet
        self._remembered: set[str] = set()  # accounts whose saved state had a memo: their ids are all known
        self._overflowing: set[str] = set()  # accounts with more ids than the state can hold: none are known

    def records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        self._known.setdefault(account_id, set()).add(obj["id"])
        self._unseen.get(account_id, set()).discard(obj["id"])
        return super().records_of(account_id, obj, fetched_at)

    def deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        self._known.get(account_id, set()).discard(object_id)
        return super().deleted_records_of(account_id, object_id, fetched_at)

    def holds(self, account_id: str, object_id: str) -> bool:
        """Whether the destination may hold the object: yes, unless the saved state had a memo (a state
        without one, as written before the stream kept it, says nothing of what the destination holds)
        and the object is not in it nor written ahead of a page of a killed run."""
        known = self._known.get(account_id, set()) | self._unseen.get(account_id, set())
        return (account_id not in self._remembered or object_id in known
                or object_id in self._written_ahead.get(account_id, ()))

    def extra_state(self, account_id: str) -> dict[str, Any] | None:
        known, unseen = self._known.get(account_id, set()), self._unseen.get(account_id, set())
        if account_id in self._overflowing or not _fits(known, unseen):
            if account_id not in self._overflowing:
                self._overflowing.add(account_id)
                self.logger.warning(
                    "%s: account %s holds more objects than the state can list within %d bytes; deletions that "
                    "only a full read can find (no /changes, a state the server rejects, an object created and "
                    "destroyed meanwhile) are not detected for it until it holds fewer: a full refresh of the "
                    "stream removes them",
                    self.name, account_id, MEMO_BUDGET_BYTES,
                )
            return {"overflow": True}
        memo: dict[str, Any] = {"ids": sorted(known)}
        if unseen:
            memo["unseen"] = sorted(unseen)
        return memo

    def restore_extra_state(self, account_id: str, extra: dict[str, Any] | None) -> None:
        """None: a full read starts; what the destination held is unseen until the read brings it. That includes
        what a killed full read had not seen yet (its memo's "unseen", taken back just before): simulation seed
        ci-185 lost the deletion of an identity so, once a state written ahead of the page saved that memo."""
        if extra is None:
            self._unseen[account_id] = self._known.pop(account_id, set()) | self._unseen.get(account_id, set())
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
        if page.ends_full_read and (gone := sorted(self._unseen.get(account_id, ()))):
            self.logger.info("%s: account %s: %d object(s) gone since the last sync, found by reading them all",
                             self.name, account_id, len(gone))
            for object_id in gone:
                yield from self.deleted_records_of(account_id, object_id, fetched_at)
        if page.ends_full_read:
            self._unseen.pop(account_id, None)
