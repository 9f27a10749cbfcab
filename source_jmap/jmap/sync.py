"""The sync engine: the objects of one JMAP data type in one account, as pages, for an import or since a state.

Import:       `Foo/get ids: []` captures the state first, then pages of `Foo/query` with `Foo/get`
              of its ids in the same request (back-reference), each page anchored after the last id
              of the page before. A page's `resume` point lets a killed import go on where it was.
Changes:      `Foo/changes` with `Foo/get` of created and updated ids in the same request, until
              `hasMoreChanges` is false.
Whole read:   `Foo/get ids: null`, for types without `/query`.

Pages hold the server's JSON and decode each object when it is iterated. The engine knows nothing
of what becomes of the objects; what it does about each method error is retry.py's table.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .client import JmapClient
from .datatype import DataType, Query, ResumePoint
from .errors import JmapMethodError, JmapServerError
from .paging import PageSize
from .responses import JsonObject
from .retry import Action, method_error_action
from .wire import MethodCall


@dataclass
class Page:
    """One request's worth of objects: those created (or imported), updated and destroyed.

    `state` may be saved once the page's records are out; `resume` is where an unfinished import
    goes on (None once it is done, and for changes). `total` is the server's count of what an import
    reads (on its first page); `count` how many ids an import page covered (None for other pages).
    """

    created: Iterator[JsonObject]
    state: str
    imported: bool
    updated: Iterator[JsonObject] = field(default_factory=lambda: iter(()))
    destroyed: Sequence[str] = ()
    resume: ResumePoint | None = None
    total: int | None = None
    count: int | None = None


@dataclass(frozen=True)
class _ImportRequest:
    state: MethodCall | None
    query: MethodCall
    via: MethodCall | None
    get: MethodCall

    @property
    def calls(self) -> list[MethodCall]:
        return [call for call in (self.state, self.query, self.via, self.get) if call is not None]


@dataclass(frozen=True)
class _ChangesRequest:
    changes: MethodCall
    created: MethodCall
    updated: MethodCall

    @property
    def calls(self) -> list[MethodCall]:
        return [self.changes, self.created, self.updated]


class Sync:
    """Reads one data type of one account; log lines go to `logger` and start with `label`."""

    def __init__(
        self, client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger
    ) -> None:
        self._client = client
        self._type = data_type
        self._account_id = account_id
        self._label = label
        self._logger = logger

    def pages(self, state: str | None, resume: ResumePoint | None) -> Iterator[Page]:
        """From a saved state: the changes since it, or an import when the table says the state is of no use.

        `resume` set: an import under way, whose `state` was captured before its first page.
        """
        if state is not None and resume is None:
            try:
                yield from self.changes(state)
                return
            except JmapMethodError as error:
                action = method_error_action(error)
                if action is Action.READ_WHOLE:
                    self._logger.info("%s: the server has no %s/changes; reading it whole",
                                      self._label, self._type.name)
                elif action is Action.RESYNC:
                    self._logger.warning(
                        "%s: the server cannot calculate changes for account %s since state %s (%s); "
                        "importing the whole stream again", self._label, self._account_id, state, error.error_type,
                    )
                else:
                    raise
            state = None
        yield from self.import_pages(state, resume)

    def import_pages(self, captured: str | None, resume: ResumePoint | None) -> Iterator[Page]:
        """Pages of a full import, from `resume` on; the state is captured first unless `captured` is given."""
        return self._import(captured, resume, stateless=False)

    def objects(self) -> Iterator[JsonObject]:
        """Every object once, for a read that keeps no state: no state is captured and no total asked for.

        An import that loses its anchor goes on from the start, so objects seen before are left out.
        """
        seen: set[str] = set()
        for page in self._import(None, None, stateless=True):
            for obj in page.created:
                if obj["id"] not in seen:
                    seen.add(obj["id"])
                    yield obj

    def _import(self, captured: str | None, resume: ResumePoint | None, stateless: bool) -> Iterator[Page]:
        query_spec = self._type.query
        if query_spec is None:
            yield self._whole()
            return
        progress: ResumePoint = resume or {}
        if resume:
            self._logger.info("%s: resuming the import of account %s at %s", self._label, self._account_id, progress)
        size = PageSize(self._client.session.limits.max_objects_in_get, self._label, self._logger)
        total: int | None = None
        if stateless:
            captured = ""  # the pages' state is never saved
        while True:
            build = functools.partial(self._import_request, query_spec, captured is None, progress,
                                      total is None and not stateless)
            request, responses = size.send(self._client, build, self._type.using)
            if request.state is not None:
                captured = responses[request.state]["state"]
            try:
                query = responses[request.query]
            except JmapMethodError as error:
                if method_error_action(error) is not Action.RESTART:
                    raise
                progress = self._restart_point(query_spec, progress)
                self._logger.info("%s: the last imported object is gone; going on from %s", self._label, progress)
                continue
            query_ids: list[str] = list(query["ids"])
            ids = query_ids if request.via is None else _via_ids(query_spec, query_ids, responses[request.via]["list"])
            objects = responses[request.get]["list"]
            done = len(query_ids) < (query.get("limit") or size.current)
            if query_ids:
                progress = self._resume_point(query_spec, query_ids[-1], objects.last_of(ids))
            page_total = query.get("total") if total is None else None
            total = total if page_total is None else page_total
            assert captured is not None  # taken from the saved state or from this request
            yield Page(objects.in_order(ids), captured, imported=True, resume=None if done else progress,
                       total=page_total, count=len(query_ids))
            if done:
                return
            size.fit(len(query_ids), responses.size)
            # Let this page go before the next one is fetched: peak memory is one page, not two.
            del responses, query, query_ids, ids, objects

    def changes(self, since: str) -> Iterator[Page]:
        size = PageSize(self._client.session.limits.max_objects_in_get, self._label, self._logger)
        state = since
        while True:
            request, responses = size.send(self._client, functools.partial(self._changes_request, state),
                                           self._type.using)
            changes = responses[request.changes]
            new_state, has_more = changes["newState"], changes["hasMoreChanges"]
            if has_more and new_state == state:
                raise JmapServerError(
                    f"{self._type.name}/changes says more changes follow state {state} but gives no newer state; "
                    "the server is not making progress"
                )
            self._logger.info(
                "%s: account %s: %d created, %d updated, %d destroyed since state %s", self._label,
                self._account_id, len(changes["created"]), len(changes["updated"]), len(changes["destroyed"]), state,
            )
            yield Page(iter(responses[request.created]["list"]), new_state, imported=False,
                       updated=iter(responses[request.updated]["list"]), destroyed=changes["destroyed"])
            if not has_more:
                return
            state = new_state
            size.fit(sum(len(changes[kind]) for kind in ("created", "updated", "destroyed")), responses.size)
            del responses, changes

    def _whole(self) -> Page:
        """Types without /query (Identity) are few per account: one `Foo/get` with `ids: null`."""
        get = self._type.get(self._account_id, None, "get")
        response = self._client.call([get], self._type.using)[get]
        return Page(iter(response["list"]), response["state"], imported=True)

    def _import_request(
        self, spec: Query, capture_state: bool, progress: ResumePoint, calculate_total: bool, size: int
    ) -> _ImportRequest:
        arguments: dict[str, Any] = {"accountId": self._account_id, "limit": size}
        if (query_filter := spec.filter(progress.get("after"))) is not None:
            arguments["filter"] = query_filter
        if spec.sort:
            arguments["sort"] = [dict(comparator) for comparator in spec.sort]
        if spec.collapse_threads:
            arguments["collapseThreads"] = True
        arguments |= {"anchor": progress["anchor"], "anchorOffset": 1} if "anchor" in progress else {"position": 0}
        if calculate_total:
            arguments["calculateTotal"] = True
        query = MethodCall(f"{spec.type or self._type.name}/query", arguments, "query")
        via = None
        ids = query.ref("/ids")
        if spec.via is not None:
            via = MethodCall(f"{spec.type}/get", {"accountId": self._account_id, "ids": ids,
                                                   "properties": [spec.via]}, "via")
            ids = via.ref(f"/list/*/{spec.via}")
        state = self._type.get(self._account_id, [], "state") if capture_state else None
        return _ImportRequest(state, query, via, self._type.get(self._account_id, ids, "get"))

    def _changes_request(self, since: str, size: int) -> _ChangesRequest:
        changes = MethodCall(f"{self._type.name}/changes",
                             {"accountId": self._account_id, "sinceState": since, "maxChanges": size}, "changes")
        return _ChangesRequest(changes, self._type.get(self._account_id, changes.ref("/created"), "created"),
                               self._type.get(self._account_id, changes.ref("/updated"), "updated"))

    @staticmethod
    def _resume_point(spec: Query, last_id: str, last_object: JsonObject | None) -> ResumePoint:
        """Right after the last id the query returned, with the sort value of the page's last object."""
        point: ResumePoint = {"anchor": last_id}
        if spec.sort_property and last_object and spec.sort_property in last_object:
            point[spec.sort_property] = last_object[spec.sort_property]
        return point

    @staticmethod
    def _restart_point(spec: Query, progress: ResumePoint) -> ResumePoint:
        """The anchor was destroyed: go on from the last sort value (bounds include equal values, so
        nothing is skipped), or from the start when none is known. Re-reading is safe; skipping is not."""
        if spec.sort_property and spec.sort_property in progress:
            return {"after": progress[spec.sort_property]}
        return {}


def _via_ids(spec: Query, query_ids: list[str], via_objects: Sequence[JsonObject]) -> list[str]:
    """The ids of the objects got through `via`, in query order (a server may answer `/get` in any order)."""
    target_of = {obj["id"]: obj[spec.via] for obj in via_objects if spec.via}
    return [target_of[object_id] for object_id in query_ids if object_id in target_of]


def read_all(
    client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger
) -> Iterator[JsonObject]:
    """Every object of a small type (mailboxes for a filter or a check), keeping no state.

    Paged by `Foo/query` + `Foo/get` where the type has `/query`, not `Foo/get ids: null`: servers
    may refuse that when an account holds more objects than maxObjectsInGet.
    """
    return Sync(client, data_type, account_id, label, logger).objects()
