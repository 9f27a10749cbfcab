"""What a sync reads: a JMAP data type, the properties and arguments of its `/get`, and its query."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .methods import GetCall, Ids
from .wire import MethodCall


def _no_filter(after: str | None) -> dict[str, Any] | None:
    return None


@dataclass(frozen=True)
class Query:
    """How an import finds the objects: the `/query` filter and sort, and how paging resumes.

    `filter(after)` is the query filter; `after` is a lower bound on `sort_property` when the import
    goes on after its anchor object was destroyed (None otherwise). `sort_property` is kept in each
    resume point for that purpose. A type without a `/query` of its own (Thread) is found through
    another type's query (`type`): the objects of `via` (the property holding the ids) are got.
    """

    filter: Callable[[str | None], dict[str, Any] | None] = _no_filter
    sort: tuple[Mapping[str, Any], ...] = ()
    sort_property: str | None = None
    collapse_threads: bool = False
    type: str | None = None
    via: str | None = None


@dataclass(frozen=True)
class DataType:
    """A JMAP data type as a sync reads it: the capabilities, the `/get` properties and arguments, the query.

    `query` None: the type has no `/query` and is read whole. `reread_after_changes`: properties of
    the type change without `/changes` listing the object (a Mailbox's counts change when mail of its
    threads moves elsewhere), so every incremental sync ends with the type read whole again.
    `read_whole_if_query_refused`: the type is small enough to be read with `Foo/get ids: null` where the
    server refuses its `/query` (Apache James answers Mailbox/query only with a `role` filter).
    """

    name: str
    using: tuple[str, ...]
    properties: Sequence[str] | None = None
    get_arguments: Mapping[str, Any] = field(default_factory=dict)
    query: Query | None = field(default_factory=Query)
    reread_after_changes: bool = False
    read_whole_if_query_refused: bool = False

    def get_call(self, account_id: str, ids: Ids, call_id: str) -> GetCall:
        """The type's `/get` of `ids`, with its properties and arguments."""
        return GetCall(self.name, account_id, ids, call_id, self.properties, self.get_arguments)

    def get(self, account_id: str, ids: Ids, call_id: str) -> MethodCall:
        return self.get_call(account_id, ids, call_id).call()
