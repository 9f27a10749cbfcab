"""The sync engine: the objects of one JMAP data type in one account, as pages, for an import or since a state.

Import:       `Foo/get ids: []` captures the state first, then pages of `Foo/query` with `Foo/get`
              of its ids in the same request (back-reference), each page anchored after the last id
              of the page before, until the query's `total` is reached or a page comes back empty.
              A page's `resume` point lets a killed import go on where it was.
Changes:      `Foo/changes` with `Foo/get` of created and updated ids in the same request, until
              `hasMoreChanges` is false.
Whole read:   `Foo/get ids: null`, for types without `/query`.
Blobs:        for a type that asks (DataType.blobs), a Blob/get of the page's `blobId`s rides in the same
              request, chained to its `/get`; a page holds what came (Page.blobs), its caller downloads the rest.

Pages hold the server's JSON and decode each object when it is iterated. The engine knows nothing
of what becomes of the objects; what it does about each method error is retry.py's table. A server
that answers without progress (an ignored anchor, states that go round) is stopped with one line.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .blobs import Blobs, blob_get_largest_answer
from .calls import changes_request, import_request, restart_point, resume_point, via_ids, window_point
from .client import JmapClient
from .datatype import DataType, ResumePoint
from .errors import JmapMethodError, JmapServerError
from .newcomers import Newcomers
from .paging import PageSize
from .responses import JsonObject, MethodResponses
from .results import ChangesResult, GetResult, QueryResult
from .retry import Action, method_error_action
from .wire import MethodCall

# `/changes` pages with nothing in them but hasMoreChanges and a new state: a few are possible (states
# of other types share one counter on Cyrus), an endless run is a server going round.
MAX_EMPTY_CHANGES_PAGES_IN_A_ROW = 10


@dataclass
class Page:
    """One request's worth of objects: those created (or imported), updated and destroyed.

    `state` may be saved once the page's records are out; `resume` is where an unfinished import
    goes on (None once it is done, and for changes). `total` is the server's count of what an import
    reads (on its first page); `count` how many objects an import page brought (None for other pages).
    `blobs`: what the page's Blob/get calls brought, for a type that asks for blobs.
    """

    created: Iterator[JsonObject]
    state: str
    imported: bool
    updated: Iterator[JsonObject] = field(default_factory=lambda: iter(()))
    destroyed: Sequence[str] = ()
    resume: ResumePoint | None = None
    total: int | None = None
    count: int | None = None
    blobs: Blobs = field(default_factory=Blobs)


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
        self._told_blob_get_failed = False  # a Blob/get that fails on one page likely fails on all: said once

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
        yield from self._import(state, resume, stateless=False)

    def objects(self) -> Iterator[JsonObject]:
        """Every object once, for a read that keeps no state (no state is captured).

        An import that loses its anchor goes on from the start, so objects seen before are left out.
        """
        seen: set[str] = set()
        for page in self._import(None, None, stateless=True):
            for obj in page.created:
                if obj["id"] not in seen:
                    seen.add(obj["id"])
                    yield obj

    def _import(self, captured: str | None, resume: ResumePoint | None, stateless: bool) -> Iterator[Page]:
        """Pages of a full import, from `resume` on; the state is captured first unless `captured` is given."""
        spec = self._type.query
        if spec is None:
            yield self._whole()
            return
        progress: ResumePoint = resume or {}
        if resume:
            self._logger.info("%s: resuming the import of account %s at %s", self._label, self._account_id, progress)
        size = self._page_size()
        total: int | None = None
        anchors: set[str] = set()  # the last id of every page: a page that ends at one again made no progress
        windowed = "position" in progress  # the server refuses `anchor`: pages go by sort value and position
        repeated: set[str] = set()  # ids of the page before the switch to windowed pages: they come again
        page_ids: list[str] = []
        newcomers = Newcomers(self._client, self._type, self._account_id, captured)
        if stateless:
            captured = ""  # the pages' state is never saved
        while True:
            build = functools.partial(import_request, self._type, self._account_id, captured is None, progress,
                                      total is None, newcomers=None if stateless else newcomers.call)
            request, responses = size.send(self._client, build, self._type.using)
            if request.state is not None:
                captured = GetResult.of(request.state.name, responses[request.state]).state
            if not newcomers.reached_page(request.newcomers, responses):
                continue  # more changed since the page before than one answer holds: the page is asked again
            try:
                query = QueryResult.of(request.query.name, responses[request.query])
            except JmapMethodError as error:
                action = method_error_action(error)
                if action is Action.RESTART:
                    progress = restart_point(spec, progress)
                    self._logger.info("%s: the last imported object is gone; going on from %s", self._label, progress)
                    continue
                if action is Action.NO_ANCHOR and not windowed:
                    windowed, progress, repeated, anchors = True, restart_point(spec, progress), set(page_ids), set()
                    self._logger.info("%s: the server refuses `anchor` (%s); paging by %s and position instead",
                                      self._label, error, spec.sort_property or "position alone")
                    continue
                if not anchors and self._type.read_whole_if_query_refused:
                    self._logger.info("%s: the server refuses %s (%s); reading %s whole with %s/get",
                                      self._label, request.query.name, error, self._type.name, self._type.name)
                    yield self._whole()
                    return
                raise
            ids = query.ids if request.via is None else via_ids(
                spec, query.ids, GetResult.of(request.via.name, responses[request.via]).objects)
            page_ids = ids
            ids = [object_id for object_id in ids if object_id not in repeated]
            got = GetResult.of(request.get.name, responses[request.get])
            page_total = query.total if total is None else None  # the estimate, given once
            total = total if page_total is None else page_total
            done = not query.ids if windowed else self._import_done(query, total)
            if query.ids:
                if query.ids[-1] in anchors:
                    raise JmapServerError(
                        f"{request.query.name} answered again a page ending at {query.ids[-1]}, as it had before "
                        f"(asked from {progress}): the server ignores `anchor` and is not making progress"
                    )
                anchors.add(query.ids[-1])
                progress = (window_point(spec, progress, query.ids, list(got.objects.in_order(ids))) if windowed
                            else resume_point(spec, query.ids[-1], got.objects.last_of(ids)))
            refetched = self._refetch(got.not_found, request.get.name)
            assert captured is not None  # taken from the saved state or from this request
            yield Page(newcomers.old(itertools.chain(got.objects.in_order(ids), refetched)), captured, imported=True,
                       resume=None if done else progress, total=page_total,
                       count=len(ids) - len(got.not_found) + len(refetched),
                       blobs=self._blobs(responses, request.blobs))
            if done:
                return
            size.fit(len(query.ids), responses.size)
            # Let this page go before the next one is fetched: peak memory is one page, not two.
            del responses, query, ids, got, refetched, page_total

    @staticmethod
    def _import_done(query: QueryResult, total: int | None) -> bool:
        """The import is over when the page is empty or reaches the total the server counted.

        A short page alone proves nothing: a server may answer fewer ids than `limit` mid-way.
        Mail that arrives meanwhile comes with the changes after the import (the state was taken first).
        """
        if not query.ids:
            return True
        return total is not None and query.position is not None and query.position + len(query.ids) >= total

    def changes(self, since: str) -> Iterator[Page]:
        size = self._page_size()
        state = since
        states = {since}
        empty_pages = 0
        while True:
            request, responses = size.send(self._client, functools.partial(
                changes_request, self._type, self._account_id, state), self._type.using)
            changes = ChangesResult.of(request.changes.name, responses[request.changes])
            empty_pages = empty_pages + 1 if changes.count == 0 else 0
            if changes.has_more_changes and (changes.new_state in states
                                             or empty_pages > MAX_EMPTY_CHANGES_PAGES_IN_A_ROW):
                raise JmapServerError(
                    f"{request.changes.name} says more changes follow state {state} but gives "
                    f"{'a state it gave before' if changes.new_state in states else 'no changes'} "
                    f"({changes.new_state}): the server is not making progress"
                )
            states.add(changes.new_state)
            self._logger.info(
                "%s: account %s: %d created, %d updated, %d destroyed since state %s", self._label,
                self._account_id, len(changes.created), len(changes.updated), len(changes.destroyed), state,
            )
            created = GetResult.of(request.created.name, responses[request.created])
            updated = GetResult.of(request.updated.name, responses[request.updated])
            yield Page(
                itertools.chain(iter(created.objects), self._refetch(created.not_found, request.created.name)),
                changes.new_state, imported=False, destroyed=changes.destroyed,
                updated=itertools.chain(iter(updated.objects), self._refetch(updated.not_found, request.updated.name)),
                blobs=self._blobs(responses, request.created_blobs, request.updated_blobs),
            )
            if not changes.has_more_changes:
                break
            state = changes.new_state
            size.fit(changes.count, responses.size)
            del responses, changes, created, updated
        if self._type.reread_after_changes:
            yield Page(self.objects(), changes.new_state, imported=False)

    def _page_size(self) -> PageSize:
        """Pages up to maxObjectsInGet; where each object may bring its blob, the first one sized for the worst."""
        return PageSize(self._client.session.limits.max_objects_in_get, self._label, self._logger,
                        largest_object=blob_get_largest_answer() if self._type.blobs else None)

    def _blobs(self, responses: MethodResponses, *calls: MethodCall | None) -> Blobs:
        """What the page's Blob/get calls brought. One the server failed or answered unusably is logged (once
        a read): its blobs are left to the caller's downloads, as are those it did not send whole."""
        blobs = Blobs()
        for call in calls:
            if call is None:
                continue
            try:
                blobs.add(responses[call])
            except (JmapMethodError, JmapServerError) as error:
                if not self._told_blob_get_failed:
                    self._told_blob_get_failed = True
                    self._logger.warning("%s: account %s: %s failed (%s); its blobs are downloaded instead",
                                         self._label, self._account_id, call.name, error)
        return blobs

    def _refetch(self, not_found: list[str], method: str) -> list[JsonObject]:
        """Ids the server listed but could not get: asked for once more, and those still missing reported."""
        if not not_found:
            return []
        get = self._type.get(self._account_id, not_found, "get")
        found = list(GetResult.of(method, self._client.call([get], self._type.using)[get]).objects)
        if missing := sorted(set(not_found) - {obj["id"] for obj in found}):
            self._logger.warning(
                "%s: account %s: %d object(s) the server listed were not found by %s even when asked again "
                "(destroyed meanwhile; the next sync's changes bring the deletion): %s", self._label,
                self._account_id, len(missing), method, ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""),
            )
        return found

    def probe(self) -> None:
        """One import page of one object, its results checked and dropped: what a read will ask for,
        asked before the read (the server refuses a filter, a property or an argument here, not mid-sync)."""
        if self._type.query is None:
            self._whole()
            return
        request = import_request(self._type, self._account_id, True, {}, False, 1)
        responses = self._client.call(request.calls, self._type.using)
        assert request.state is not None
        GetResult.of(request.state.name, responses[request.state])
        QueryResult.of(request.query.name, responses[request.query])
        GetResult.of(request.get.name, responses[request.get])

    def _whole(self) -> Page:
        """Types without /query (Identity) are few per account: one `Foo/get` with `ids: null`."""
        get = self._type.get(self._account_id, None, "get")
        response = GetResult.of(get.name, self._client.call([get], self._type.using)[get])
        return Page(iter(response.objects), response.state, imported=True)


def read_all(
    client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger
) -> Iterator[JsonObject]:
    """Every object of a small type (mailboxes for a filter or a check), keeping no state.

    Paged by `Foo/query` + `Foo/get` where the type has `/query`, not `Foo/get ids: null`: servers
    may refuse that when an account holds more objects than maxObjectsInGet.
    """
    return Sync(client, data_type, account_id, label, logger).objects()
