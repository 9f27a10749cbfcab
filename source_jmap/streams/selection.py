"""Which emails a sync covers: `start_date` and the mailbox include/exclude lists.

The same selection filters the import (as a JMAP query filter) and the changes (locally,
on the fetched objects), so that an email moved out of the selection during incremental
syncs comes out as deleted, and one moved back in comes out again in full.
"""

from __future__ import annotations

import difflib
import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ..config import DEFAULT_EXCLUDE_MAILBOXES
from ..jmap import MAIL, DataType, JmapClient, JmapConfigError, Query, read_all
from .dialects import Dialect

# Imports page by receivedAt, oldest first: a resume point keeps the last one, so an import whose
# anchor email was destroyed goes on from that time instead of from the start.
RECEIVED_AT = "receivedAt"
OLDEST_FIRST = ({"property": RECEIVED_AT, "isAscending": True},)
LOGGER = logging.getLogger("airbyte")
MAILBOX_NAMES = DataType("Mailbox", (MAIL,), properties=("id", "name", "parentId", "role"),
                         read_whole_if_query_refused=True)


def to_utc_date(moment: datetime) -> str:
    """JMAP UTCDate: RFC 3339 in UTC with a 'Z' (RFC 8620 section 1.4)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Value = TypeVar("Value")


class PerAccount(Generic[Value]):
    """`fetch(account_id)` made once per account, however many threads ask at once: the first fetches while the
    others wait for its value. (functools.cache let each thread fetch: the emails, attachments and raw_messages
    of an account, read side by side, each sent their Mailbox/get, whose answers could differ if a mailbox was
    renamed meanwhile.) A fetch that fails is not kept: the next caller tries again, and fails with the reason."""

    def __init__(self, fetch: Callable[[str], Value]) -> None:
        self._fetch = fetch
        self._values: dict[str, Value] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # over `_locks`

    def __call__(self, account_id: str) -> Value:
        with self._lock:
            account_lock = self._locks.setdefault(account_id, threading.Lock())
        with account_lock:
            if account_id not in self._values:
                self._values[account_id] = self._fetch(account_id)
            return self._values[account_id]


@dataclass(frozen=True)
class MailboxIds:
    include: frozenset[str]
    exclude: frozenset[str]


class EmailSelection:
    def __init__(
        self, client: JmapClient, start_date: datetime | None, mailboxes: Sequence[str],
        exclude_mailboxes: Sequence[str],
    ) -> None:
        self._client = client
        self.start_date = start_date
        self._include = list(mailboxes)
        self._exclude = list(exclude_mailboxes)
        self.mailboxes = PerAccount(self._read_mailboxes)
        self.mailbox_ids = PerAccount(self._resolve)

    def describe(self) -> dict[str, Any]:
        """The selection as the user set it, in a canonical form: two syncs cover the same emails when equal."""
        return {"start_date": to_utc_date(self.start_date) if self.start_date else None,
                "mailboxes": sorted(self._include), "exclude_mailboxes": sorted(self._exclude)}

    def query(self, account_id: str) -> Query:
        """The Email/query of an import of the selected emails, oldest first."""
        return Query(filter=functools.partial(self.query_filter, account_id), sort=OLDEST_FIRST,
                     sort_property=RECEIVED_AT)

    def email_dialect(self, account_id: str, properties: Sequence[str],
                      get_arguments: Mapping[str, Any] | None = None) -> Dialect:
        """Mail's one dialect for a stream of the selected emails: Email/get of `properties` over `query`, and changed
        emails kept by `matches`; a mail server that does not serve it fails the sync."""
        return Dialect(MAIL, DataType("Email", (MAIL,), properties, dict(get_arguments or {}), self.query(account_id)),
                       functools.partial(self.matches, account_id), unserved_is_absent=False)

    def query_filter(self, account_id: str, after: str | None = None) -> dict[str, Any] | None:
        """A JMAP FilterOperator/FilterCondition for Email/query, or None for every email."""
        condition: dict[str, Any] = {}
        bounds = [moment for moment in (self.start_date, _parse(after)) if moment]
        if bounds:
            condition["after"] = to_utc_date(max(bounds))
        ids = self.mailbox_ids(account_id)
        if ids.exclude:
            condition["inMailboxOtherThan"] = sorted(ids.exclude)
        if not ids.include:
            return condition or None
        included = {"operator": "OR", "conditions": [{"inMailbox": mailbox_id} for mailbox_id in sorted(ids.include)]}
        return {"operator": "AND", "conditions": [condition, included]} if condition else included

    def matches(self, account_id: str, email: Mapping[str, Any]) -> bool:
        """The same test as `query_filter`, on an Email that has receivedAt and mailboxIds.

        An email whose receivedAt the server left null cannot be placed in time: it is kept.
        """
        received = _parse(email.get(RECEIVED_AT))
        if self.start_date and received is not None and received < self.start_date:
            return False
        ids = self.mailbox_ids(account_id)
        in_mailboxes = set(email.get("mailboxIds") or {})
        if ids.include and not in_mailboxes & ids.include:
            return False
        return not (ids.exclude and in_mailboxes and in_mailboxes <= ids.exclude)

    @property
    def filters_mailboxes(self) -> bool:
        return bool(self._include or self._exclude)

    def _read_mailboxes(self, account_id: str) -> list[dict[str, Any]]:
        """The account's mailboxes (id, name, parentId, role), read once: by the filters, and by `check` the
        same way, so that the two cannot part (Mailbox/get where Mailbox/query is refused, as Apache James does)."""
        return list(read_all(self._client, MAILBOX_NAMES, account_id, "mailbox filter", LOGGER))

    def _resolve(self, account_id: str) -> MailboxIds:
        if not self.filters_mailboxes:
            return MailboxIds(frozenset(), frozenset())
        mailboxes = self.mailboxes(account_id)
        return MailboxIds(
            include=self._ids_of("mailboxes", self._include, mailboxes, account_id, optional=()),
            exclude=self._ids_of("exclude_mailboxes", self._exclude, mailboxes, account_id,
                                 optional=DEFAULT_EXCLUDE_MAILBOXES),
        )

    @staticmethod
    def _ids_of(
        setting: str, wanted: Sequence[str], mailboxes: list[dict[str, Any]], account_id: str,
        optional: Sequence[str],
    ) -> frozenset[str]:
        """Mailbox ids by role ("inbox", "trash") or by name path ("Archive/2023"); INBOX in any case.

        An entry that matches nothing is refused, for exclusions too: "Trashh" would archive the Trash it meant
        to leave out. Only the entries of `optional` may match nothing. For exclude_mailboxes these are the
        default's (DEFAULT_EXCLUDE_MAILBOXES, roles): the platform writes the default into every config that
        does not set the field, so a default entry cannot be told from one the user typed; and an account
        without a Junk mailbox must not fail for a default it never chose. A user who types "trash" or "junk"
        gets the same leniency; the match is exact, so any other spelling ("Trashh", "Junk") must match.
        """
        by_id = {mailbox["id"]: mailbox for mailbox in mailboxes}

        def path(mailbox: dict[str, Any]) -> str:
            parent = by_id.get(mailbox.get("parentId") or "")
            return f"{path(parent)}/{mailbox['name']}" if parent else str(mailbox["name"])

        found: set[str] = set()
        for name in wanted:
            ids = {
                mailbox["id"] for mailbox in mailboxes
                if (mailbox.get("role") or "").lower() == name.lower() or path(mailbox) == name
                or (name.upper() == "INBOX" and mailbox.get("role") == "inbox")
            }
            if not ids and name in optional:
                LOGGER.info("%s entry '%s' (a default) matches no mailbox in account %s; nothing is left out for it",
                            setting, name, account_id)
            elif not ids:
                paths = sorted(path(mailbox) for mailbox in mailboxes)
                roles = sorted({str(mailbox["role"]).lower() for mailbox in mailboxes if mailbox.get("role")})
                lowered = {known.lower() for known in paths}
                candidates = [*paths, *(role for role in roles if role not in lowered)]  # "Trash" once, not twice
                closest = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
                hint = f" (closest: {', '.join(closest)})" if closest else ""
                raise JmapConfigError(
                    f"{setting} entry '{name}' matches no mailbox name or role in account {account_id}{hint}; "
                    f"mailboxes: {', '.join(paths) or 'none'}; roles: {', '.join(roles) or 'none'}"
                )
            found |= ids
        return frozenset(found)


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
