"""The ways a server may offer a stream's objects: dialects. Mail is one (RFC 8621); the types beyond mail come
under a standard capability or under Cyrus's own.

A stream lists its dialects, most preferred first; each account's capabilities (`accountCapabilities` in the
session) pick the first it offers (`base.JmapStream.dialect`). An account that offers none yields nothing for the
stream and one log line saying why; the sync goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..jmap import DataType

Record = dict[str, Any]

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
    """One way a server offers a stream's objects: the capability that must be there, what to read, and which
    created or updated objects belong in the stream (the query's filter, applied to changes).

    `unserved_is_absent`: a server may list the capability yet answer its methods with unknownMethod (Cyrus
    without `jmap_nonstandard_extensions` lists its sieve capability yet answers SieveScript/get so); that is a
    type not offered, nothing to read (policy.py's NOT_OFFERED), not a failure. Not for mail: a mail server that
    does not serve Email/get must fail the sync, not leave the stream empty.
    """

    capability: str
    data_type: DataType
    selects: Callable[[Record], bool] = _everything
    unserved_is_absent: bool = True


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
