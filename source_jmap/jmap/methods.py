"""The standard methods this client calls, one typed builder each: `Foo/get`, `Foo/query` and `Foo/changes`
(RFC 8620 sections 5.1, 5.5 and 5.2), each with typed back-references (section 3.7) to the parts of its result
that a later call of the same request takes: `QueryCall.ids_ref()`, `ChangesCall.created_ref()`, ...

A builder holds the arguments by their RFC meaning; `call()` is the wire's `MethodCall`. An argument left at
its default is not sent, so the server's own default holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .wire import MethodCall, ResultReference

Ids = Sequence[str] | ResultReference | None


@dataclass(frozen=True)
class GetCall:
    """`Foo/get`: `ids` None for every object, a list, or a reference to another call's ids."""

    type_name: str
    account_id: str
    ids: Ids
    call_id: str
    properties: Sequence[str] | None = None
    # The type's own /get arguments (Email/get's fetchTextBodyValues, Blob/get's length, ...).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.type_name}/get"

    def call(self) -> MethodCall:
        arguments: dict[str, Any] = {"accountId": self.account_id, "ids": self.ids, **self.extra}
        if self.properties is not None:
            arguments["properties"] = list(self.properties)
        return MethodCall(self.name, arguments, self.call_id)

    def state_ref(self) -> ResultReference:
        return ResultReference(self.call_id, self.name, "/state")

    def property_ref(self, name: str) -> ResultReference:
        """The value of property `name` of every object got, e.g. the `threadId` of each email."""
        return ResultReference(self.call_id, self.name, f"/list/*/{name}")


@dataclass(frozen=True)
class QueryCall:
    """`Foo/query`: which objects (`filter`), in what order (`sort`), and from where (`position`, or `anchor`
    with `anchor_offset`), at most `limit`."""

    type_name: str
    account_id: str
    call_id: str
    filter: Mapping[str, Any] | None = None
    sort: Sequence[Mapping[str, Any]] = ()
    collapse_threads: bool = False  # Email/query only (RFC 8621 section 4.4)
    position: int | None = None
    anchor: str | None = None
    anchor_offset: int | None = None
    limit: int | None = None
    calculate_total: bool = False

    @property
    def name(self) -> str:
        return f"{self.type_name}/query"

    def call(self) -> MethodCall:
        arguments: dict[str, Any] = {"accountId": self.account_id}
        if self.filter is not None:
            arguments["filter"] = self.filter
        if self.sort:
            arguments["sort"] = [dict(comparator) for comparator in self.sort]
        if self.collapse_threads:
            arguments["collapseThreads"] = True
        optional = {"position": self.position, "anchor": self.anchor, "anchorOffset": self.anchor_offset,
                    "limit": self.limit}
        arguments |= {key: value for key, value in optional.items() if value is not None}
        if self.calculate_total:
            arguments["calculateTotal"] = True
        return MethodCall(self.name, arguments, self.call_id)

    def ids_ref(self) -> ResultReference:
        return ResultReference(self.call_id, self.name, "/ids")


@dataclass(frozen=True)
class ChangesCall:
    """`Foo/changes` since a state, or since the state another call's result gives (a reference)."""

    type_name: str
    account_id: str
    since_state: str | ResultReference
    call_id: str
    max_changes: int | None = None

    @property
    def name(self) -> str:
        return f"{self.type_name}/changes"

    def call(self) -> MethodCall:
        arguments: dict[str, Any] = {"accountId": self.account_id, "sinceState": self.since_state}
        if self.max_changes is not None:
            arguments["maxChanges"] = self.max_changes
        return MethodCall(self.name, arguments, self.call_id)

    def created_ref(self) -> ResultReference:
        return ResultReference(self.call_id, self.name, "/created")

    def updated_ref(self) -> ResultReference:
        return ResultReference(self.call_id, self.name, "/updated")
