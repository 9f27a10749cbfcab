"""Address books, contacts and contact groups: RFC 9610 (JSContact cards) or Cyrus's own Contact types."""

from __future__ import annotations

from typing import Any

from ..jmap import DataType, Query
from .base import JmapStream, Record
from .dialects import CONTACTS, CYRUS_CONTACTS, Dialect
from .ledger import HeldIds

GROUP = "group"


def _cards_but_groups(after: str | None) -> dict[str, Any]:
    return {"operator": "NOT", "conditions": [{"kind": GROUP}]}


def _groups(after: str | None) -> dict[str, Any]:
    return {"kind": GROUP}


def _is_group(card: Record) -> bool:
    return card.get("kind") == GROUP


class ContactStream(JmapStream):
    """Contacts: RFC 9610 ContactCards that are not groups (JSContact, RFC 9553), or Cyrus's Contact objects."""

    name = "contacts"
    ledger = HeldIds
    dialects = (
        Dialect(CONTACTS, DataType("ContactCard", (CONTACTS,), query=Query(filter=_cards_but_groups)),
                lambda card: not _is_group(card)),
        Dialect(CYRUS_CONTACTS, DataType("Contact", (CYRUS_CONTACTS,))),
    )


class ContactGroupStream(JmapStream):
    """Contact groups: RFC 9610 ContactCards of kind "group" (members in `members`), or Cyrus's ContactGroup
    objects (members in `contactIds`)."""

    name = "contact_groups"
    ledger = HeldIds
    dialects = (
        Dialect(CONTACTS, DataType("ContactCard", (CONTACTS,), query=Query(filter=_groups)), _is_group),
        Dialect(CYRUS_CONTACTS, DataType("ContactGroup", (CYRUS_CONTACTS,))),
    )


class AddressBookStream(JmapStream):
    """RFC 9610 AddressBook objects (there is no AddressBook/query: read whole, then AddressBook/changes)."""

    name = "address_books"
    ledger = HeldIds
    dialects = (Dialect(CONTACTS, DataType("AddressBook", (CONTACTS,), query=None)),)
    missing = "Cyrus's contacts extension has no AddressBook type"
