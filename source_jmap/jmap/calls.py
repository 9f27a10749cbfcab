"""The method calls of one page: an import page (`/query` + `/get` by back-reference) or a changes page.

An import page is asked from a resume point (resume.py): after the anchor (the last id the query
returned), or, where anchors fail, from a position in a window of sort values.

Without a usable anchor (the server refuses, ignores or keeps losing them), an import pages by windows:
the objects `after` a bound, from a `position` within them. A bound is always a second before the last
sort value seen: RFC 8621 reads `after` as strictly after (Cyrus matches equal values too), and either
way every object with that value, seen or not, comes again (the engine leaves out those it yielded).
A page past the start of a window starts one position early, at the id it should follow (`follows`):
the same answer shows whether objects before it came or went, which positions alone would not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .datatype import DataType, Query
from .methods import ChangesCall, GetCall, Ids, QueryCall
from .responses import JsonObject
from .resume import ResumePoint, moment_of
from .wire import MethodCall


class PageRequest:
    """The calls of one page's request: `page_calls` list and get the page's objects (their refusal for size is
    the page's, paging.py); `other_calls` are checks whose failures their readers handle."""

    @property
    def page_calls(self) -> list[MethodCall]:
        raise NotImplementedError

    @property
    def other_calls(self) -> list[MethodCall]:
        return []

    @property
    def calls(self) -> list[MethodCall]:
        return [*self.page_calls, *self.other_calls]


@dataclass(frozen=True)
class ImportRequest(PageRequest):
    state: MethodCall | None
    query: MethodCall
    via: MethodCall | None
    get: MethodCall
    # `Foo/changes` since the import's state, after the query: which of the page's objects were created after it.
    created: MethodCall | None = None
    # The page's ids asked again after that `Foo/changes`: one created after the import's state and destroyed
    # before the changes call is in neither list of a server that leaves such ids out (RFC 8620 section 5.2), nor
    # in any /changes after the import (simulation seed issue18-3013: emitted, then left in the destination).
    alive: MethodCall | None = None
    # A page of one object that follows an id cannot hold that id too (its /get would ask for two): this asks for
    # the id before the page's position, after the page's query. Two changes between the two calls that cancel
    # out would go unseen; a page of two or more holds the id it follows in its own answer instead.
    check: MethodCall | None = None

    @property
    def page_calls(self) -> list[MethodCall]:
        return [call for call in (self.state, self.query, self.via, self.get) if call is not None]

    @property
    def other_calls(self) -> list[MethodCall]:
        return [call for call in (self.created, self.alive, self.check) if call is not None]


@dataclass(frozen=True)
class ChangesRequest(PageRequest):
    changes: MethodCall
    created: MethodCall
    updated: MethodCall

    @property
    def page_calls(self) -> list[MethodCall]:
        return [self.changes, self.created, self.updated]


def import_request(
    data_type: DataType, account_id: str, capture_state: bool, progress: ResumePoint, calculate_total: bool,
    changes_since: str | None, size: int, skip: int = 0,
) -> ImportRequest:
    """`Foo/get ids: []` for the state when asked, `Foo/query` from `progress`, the `Foo/get` of its ids, and
    `Foo/changes` since `changes_since` (or since the state captured here, when capturing and `changes_since` is
    "") for the objects created meanwhile, then the page's ids again for those destroyed meanwhile.

    A page of more than one object that follows an id starts at it, one position early. `skip`, by anchor: the page
    after the `skip` objects that follow the anchor, also starting one position early, at the last of them (the
    second page of a pair, pairs.py)."""
    query = replace(query_call(data_type, account_id, progress, "query"), limit=size, calculate_total=calculate_total)
    if progress.anchor is not None:
        query = replace(query, anchor=progress.anchor, anchor_offset=max(1, skip))
    elif progress.following is not None:
        query = replace(query, position=(progress.position or 0) - (size > 1))
    else:  # from the start, or a position within the window of objects after `after` (a server without anchors)
        query = replace(query, position=progress.position or 0)
    spec = data_type.query or Query()
    via = None
    ids: Ids = query.ids_ref()
    if spec.via is not None:
        via = GetCall(query.type_name, account_id, ids, "via", properties=[spec.via])
        ids = via.property_ref(spec.via)
    state = data_type.get_call(account_id, [], "state") if capture_state else None
    get = data_type.get(account_id, ids, "get")
    created = alive = None
    if changes_since is not None:
        since = state.state_ref() if state is not None and not changes_since else changes_since
        created = ChangesCall(data_type.name, account_id, since, "created").call()
        alive = GetCall(data_type.name, account_id, ids, "alive", properties=["id"]).call()
    check = None
    if progress.following is not None and size == 1:
        check = replace(query_call(data_type, account_id, progress, "check"), position=(progress.position or 0) - 1,
                        limit=1).call()
    return ImportRequest(None if state is None else state.call(), query.call(), None if via is None else via.call(),
                         get, created, alive, check)


def query_call(data_type: DataType, account_id: str, progress: ResumePoint, call_id: str) -> QueryCall:
    """The type's `/query` of the objects `progress` is among, in order (filter `after` its bound, sort, collapse),
    the caller says from where and how many."""
    spec = data_type.query or Query()
    return QueryCall(spec.type or data_type.name, account_id, call_id, filter=spec.filter(progress.bound),
                     sort=spec.sort, collapse_threads=spec.collapse_threads)


def locate_call(data_type: DataType, account_id: str, progress: ResumePoint, span: int) -> MethodCall:
    """The ids of a window around the position before `progress`'s, to find where the ids it follows went."""
    start = max(0, (progress.position or 0) - 1 - span)
    return replace(query_call(data_type, account_id, progress, "locate"), position=start, limit=2 * span + 1).call()


def changes_request(data_type: DataType, account_id: str, since: str, size: int) -> ChangesRequest:
    """`Foo/changes` and the `Foo/get` of what it created and updated, in one request."""
    changes = ChangesCall(data_type.name, account_id, since, "changes", max_changes=size)
    created = data_type.get(account_id, changes.created_ref(), "created")
    updated = data_type.get(account_id, changes.updated_ref(), "updated")
    return ChangesRequest(changes.call(), created, updated)


def via_ids(spec: Query, query_ids: list[str], via_objects: Sequence[JsonObject]) -> list[str]:
    """The ids of the objects got through `via`, in query order (a server may answer `/get` in any order)."""
    target_of: dict[str, str] = {
        obj["id"]: obj[spec.via] for obj in via_objects if spec.via and isinstance(obj.get(spec.via), str)
    }
    return [target_of[object_id] for object_id in query_ids if object_id in target_of]


def seen_in_window(
    seen: dict[str, Any], window: ResumePoint, objects: Iterable[JsonObject], new_ids: list[str],
    sort_property: str | None,
) -> dict[str, Any]:
    """The ids a window from `window` may bring again: those seen before and those of this page (`new_ids` of its
    `objects`), less the ones whose sort value is before the window's bound (ids without a known value are kept)."""
    fresh = set(new_ids)
    seen = seen | {obj["id"]: obj.get(sort_property) if sort_property else None
                   for obj in objects if obj["id"] in fresh}
    if (bound := moment_of(window.bound)) is None:
        return seen
    return {object_id: value for object_id, value in seen.items()
            if (moment := moment_of(value)) is None or moment >= bound}
