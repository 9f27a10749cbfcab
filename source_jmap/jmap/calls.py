"""The method calls of one page: an import page (`/query` + `/get` by back-reference) or a changes page.

Where an import goes on is a resume point: the anchor (the last id the query returned) and, when the
query sorts by a property, that property's value on the page's last object, so that an import whose
anchor object was destroyed can go on from that value instead of from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .blobs import blob_get
from .datatype import DataType, Query, ResumePoint
from .responses import JsonObject
from .wire import MethodCall


@dataclass(frozen=True)
class ImportRequest:
    state: MethodCall | None
    query: MethodCall
    via: MethodCall | None
    get: MethodCall
    blobs: MethodCall | None
    newcomers: MethodCall | None = None  # the `/changes` that must see the page's `/get` (newcomers.py)

    @property
    def calls(self) -> list[MethodCall]:
        return [*self.page_calls, *(call for call in (self.newcomers, self.blobs) if call is not None)]

    @property
    def page_calls(self) -> list[MethodCall]:
        return [call for call in (self.state, self.query, self.via, self.get) if call is not None]


@dataclass(frozen=True)
class ChangesRequest:
    changes: MethodCall
    created: MethodCall
    updated: MethodCall
    created_blobs: MethodCall | None
    updated_blobs: MethodCall | None

    @property
    def calls(self) -> list[MethodCall]:
        return [*self.page_calls, *(call for call in (self.created_blobs, self.updated_blobs) if call is not None)]

    @property
    def page_calls(self) -> list[MethodCall]:
        return [self.changes, self.created, self.updated]


def import_request(
    data_type: DataType, account_id: str, capture_state: bool, progress: ResumePoint, calculate_total: bool,
    size: int, newcomers: Callable[[MethodCall | None, int], MethodCall | None] | None = None,
) -> ImportRequest:
    """`Foo/get ids: []` for the state when asked, `Foo/query` from `progress`, the `Foo/get` of its ids, the
    `newcomers` call made from the state call and the size, and the Blob/get of the page's blobs when the type
    asks for them."""
    spec = data_type.query or Query()
    arguments: dict[str, Any] = {"accountId": account_id, "limit": size}
    if (query_filter := spec.filter(progress.get("after"))) is not None:
        arguments["filter"] = query_filter
    if spec.sort:
        arguments["sort"] = [dict(comparator) for comparator in spec.sort]
    if spec.collapse_threads:
        arguments["collapseThreads"] = True
    if "anchor" in progress:
        arguments |= {"anchor": progress["anchor"], "anchorOffset": 1}
    else:  # from the start, or a position among the objects at or after `after` (a server without anchors)
        arguments["position"] = progress.get("position", 0)
    if calculate_total:
        arguments["calculateTotal"] = True
    query = MethodCall(f"{spec.type or data_type.name}/query", arguments, "query")
    via = None
    ids = query.ref("/ids")
    if spec.via is not None:
        via = MethodCall(f"{spec.type}/get", {"accountId": account_id, "ids": ids, "properties": [spec.via]}, "via")
        ids = via.ref(f"/list/*/{spec.via}")
    state = data_type.get(account_id, [], "state") if capture_state else None
    get = data_type.get(account_id, ids, "get")
    blobs = blob_get(account_id, get.ref("/list/*/blobId"), "blobs") if data_type.blobs else None
    return ImportRequest(state, query, via, get, blobs, newcomers(state, size) if newcomers else None)


def changes_request(data_type: DataType, account_id: str, since: str, size: int) -> ChangesRequest:
    """`Foo/changes`, the `Foo/get` of what it created and updated, and the Blob/get of their blobs when the
    type asks for them, in one request."""
    changes = MethodCall(f"{data_type.name}/changes",
                         {"accountId": account_id, "sinceState": since, "maxChanges": size}, "changes")
    created = data_type.get(account_id, changes.ref("/created"), "created")
    updated = data_type.get(account_id, changes.ref("/updated"), "updated")
    return ChangesRequest(
        changes, created, updated,
        blob_get(account_id, created.ref("/list/*/blobId"), "createdBlobs") if data_type.blobs else None,
        blob_get(account_id, updated.ref("/list/*/blobId"), "updatedBlobs") if data_type.blobs_of_updated else None,
    )


def via_ids(spec: Query, query_ids: list[str], via_objects: Sequence[JsonObject]) -> list[str]:
    """The ids of the objects got through `via`, in query order (a server may answer `/get` in any order)."""
    target_of: dict[str, str] = {
        obj["id"]: obj[spec.via] for obj in via_objects if spec.via and isinstance(obj.get(spec.via), str)
    }
    return [target_of[object_id] for object_id in query_ids if object_id in target_of]


def resume_point(spec: Query, last_id: str, last_object: JsonObject | None) -> ResumePoint:
    """Right after the last id the query returned, with the sort value of the page's last object."""
    point: ResumePoint = {"anchor": last_id}
    if spec.sort_property and last_object and spec.sort_property in last_object:
        point[spec.sort_property] = last_object[spec.sort_property]
    return point


def window_point(spec: Query, progress: ResumePoint, page_ids: list[str], objects: Sequence[JsonObject]) -> ResumePoint:
    """Where the next page starts on a server that refuses `anchor`: after the page's last sort value,
    past the objects of the page that have that value (`position` counts within the ties)."""
    values = [obj.get(spec.sort_property) for obj in objects] if spec.sort_property else []
    last = values[-1] if values else None
    if last is None or last == progress.get("after"):
        return {**progress, "position": progress.get("position", 0) + len(page_ids)}
    return {"after": last, "position": values.count(last)}


def restart_point(spec: Query, progress: ResumePoint) -> ResumePoint:
    """The anchor was destroyed: go on from the last sort value (bounds include equal values, so nothing
    is skipped), or from the start when none is known. Re-reading is safe; skipping is not."""
    if spec.sort_property and spec.sort_property in progress:
        return {"after": progress[spec.sort_property]}
    return {}
