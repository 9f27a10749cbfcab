"""The sync engine: the objects of one JMAP data type in one account, as pages, for an import or since a state.

Import:       `Foo/get ids: []` captures the state first, then pages of `Foo/query` with `Foo/get`
              of its ids in the same request (back-reference), each page anchored after the last id
              of the page before, until a page reaches the `total` of its own answer or comes back
              empty. A page's `resume` point lets a killed import go on where it was. Without usable
              anchors, pages go by windows of sort value and position (calls.py).
Changes:      `Foo/changes` with `Foo/get` of created and updated ids in the same request, until
              `hasMoreChanges` is false.
Whole read:   `Foo/get ids: null`, for types without `/query`.

Pages hold the server's JSON and decode each object when it is iterated. The engine knows nothing
of what becomes of the objects; what it does about each method error is policy.py's rows. A server
that answers without progress (an ignored anchor, states that go round) is stopped with one line.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .calls import (
    changes_request,
    follows,
    import_request,
    in_window,
    locate_call,
    moment_of,
    next_window,
    restart_point,
    resume_point,
    via_ids,
    window_start,
)
from .client import JmapClient
from .datatype import DataType, ResumePoint
from .errors import JmapMethodError, JmapServerError
from .methods import ChangesCall
from .paging import PageSize
from .policy import Action, resolve
from .responses import JsonObject, MethodResponses
from .results import ChangesResult, GetResult, QueryResult
from .wire import MethodCall

# `/changes` pages that list no id the run had not listed before (empty ones included), in a row: a few
# are possible (states of other types share one counter on Cyrus; an object changed while the run pages
# is listed again), an endless run is a server going round: one answering a fresh state and one of the
# same few ids on every page ran 60 s and 35,921 records until killed. A run of real changes lists new
# ids on nearly every page, however long (100,000 changes at 50 a page: 2,000 pages, each new). A server that
# logs every change may list an object again for each time it changed, on pages of its own where maxChanges is
# small: the simulation's model server, pages of 1, a mailbox whose counts changed 11 times between changes of
# others, was stopped at 10. So each id listed allows REPEAT_PAGES_PER_LISTED_ID more such pages: the endless
# run above, a few ids going round, still ends within a few dozen pages.
MAX_CHANGES_PAGES_WITHOUT_NEW_IDS = 10
REPEAT_PAGES_PER_LISTED_ID = 10
# Anchors one import may lose (anchorNotFound) before it pages by windows, which need none: a few are
# mail destroyed or moved under a long import; a server that lost every anchor restarted 35,957 times
# in 90 s without a record.
MAX_ANCHOR_RESTARTS = 3
# Paging without anchors, each page starts at the id it follows; when objects before it came or went, the
# ids of the page before are looked for this many positions either side (ids only: 129 ids, a few KB).
# Further than that, or all of them destroyed, the window is read again from its start (dups left out):
# at most MAX_WINDOW_RESTARTS times an import. Pages that each find their start moved, more than
# MAX_WINDOW_SHIFTS_IN_A_ROW in a row: results that never hold still, a server going round.
LOCATE_SPAN = 64
MAX_WINDOW_RESTARTS = 10
MAX_WINDOW_SHIFTS_IN_A_ROW = 10


@dataclass
class Page:
    """One request's worth of objects: those created (or imported), updated and destroyed.

    `state` may be saved once the page's records are out; `resume` is where an unfinished import
    goes on (None once it is done, and for changes). `total` is the server's count of what this run of an
    import reads, from its first page on (on that page); `count` how many objects an import page brought
    (None for other pages). `created_ids`: the objects the page may bring that the state it starts from does
    not know, which that state's `/changes` may never list again (created and destroyed since it: RFC 8620
    section 5.2): those /changes lists as created, and every object of a read whole. An import page has none:
    its objects existed at its captured state, those created later are held back for the changes after it.
    """

    created: Iterator[JsonObject]
    state: str
    imported: bool
    updated: Iterator[JsonObject] = field(default_factory=lambda: iter(()))
    destroyed: Sequence[str] = ()
    resume: ResumePoint | None = None
    total: int | None = None
    count: int | None = None
    created_ids: Sequence[str] = ()


class Sync:
    """Reads one data type of one account; log lines go to `logger` and start with `label`."""

    def __init__(
        self, client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger,
        page_limit: int | None = None,
    ) -> None:
        """`page_limit`: the most objects a page asks for, below the server's own limit (a probe's one)."""
        self._client = client
        self._page_limit = page_limit
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
                row = resolve(error)
                if row.action is Action.READ_WHOLE:
                    self._logger.info("%s: the server has no %s/changes; reading it whole",
                                      self._label, self._type.name)
                elif row.action is Action.RESYNC:
                    self._logger.warning(
                        "%s: the server cannot calculate changes for account %s since state %s (%s: %s); importing "
                        "the whole stream again", self._label, self._account_id, state, error.error_type, row.wording,
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
        """Pages of a full import, from `resume` on; the state is captured first unless `captured` is given.

        Pages go by anchor. A lost anchor (anchorNotFound) goes on from the last sort value; past
        MAX_ANCHOR_RESTARTS lost anchors, or on a server that refuses or ignores `anchor`, pages go by
        windows of sort value and position instead (calls.py), which need no anchor at all.
        """
        spec = self._type.query
        if spec is None:
            yield self._whole()
            return
        progress: ResumePoint = resume or {}
        if resume:
            self._logger.info("%s: resuming the import of account %s at %s", self._label, self._account_id, progress)
        size = self._page_size()
        counted = False  # the first page says how many objects this import reads
        anchors: set[str] = set()  # the last id of every page: a page that ends at one again made no progress
        windowed = "position" in progress
        # Ids already yielded that a window may bring again, with their sort values: by windows, the objects of
        # the window's bound and later; by anchors, the last page's (a switch to windows reads it again).
        seen: dict[str, Any] = {}
        recent = [object_id] if (object_id := follows(progress)) else []  # the query ids of the page before
        lost_anchors = window_restarts = shifts = 0
        # Objects created after the import's state are left to the /changes that follow it: one the import
        # yielded and the server destroyed before those changes is in none of their lists (RFC 8620 section 5.2:
        # created and destroyed since the state, it SHOULD be left out), so the destination would keep it for
        # ever. Tracked by a `Foo/changes` in each page's request, from the state ("": captured in the same one).
        tracked: str | None = None if stateless else captured or ""
        created_after: set[str] = set()
        if stateless:
            captured = ""  # the pages' state is never saved
        while True:
            build = functools.partial(import_request, self._type, self._account_id, captured is None, progress, True,
                                      tracked)
            request, responses = size.send(self._client, build, self._type.using)
            if request.state is not None:
                captured = GetResult.of(request.state.name, responses[request.state]).state
            if request.created is not None:
                tracked = self._created_since(request.created, responses, created_after)
            try:
                query = QueryResult.of(request.query.name, responses[request.query])
            except JmapMethodError as error:
                action = resolve(error).action
                if action is Action.RESTART and "anchor" not in progress:
                    raise JmapServerError(
                        f"{request.query.name} answered anchorNotFound to a query without an anchor (asked from "
                        f"{progress}): the server is not making progress"
                    ) from None
                if action is Action.RESTART and lost_anchors < MAX_ANCHOR_RESTARTS:
                    lost_anchors += 1
                    progress = restart_point(spec, progress)
                    self._logger.info("%s: the last imported object is gone; going on from %s", self._label, progress)
                    continue
                if action in (Action.RESTART, Action.NO_ANCHOR) and not windowed:
                    windowed, progress = True, window_start(spec, progress)
                    self._logger.info("%s: %s; paging by %s and position instead", self._label,
                                      f"the server refuses `anchor` ({error})" if action is Action.NO_ANCHOR
                                      else f"{lost_anchors + 1} anchors of this import were not found",
                                      spec.sort_property or "position alone")
                    continue
                if not anchors and self._type.read_whole_if_query_refused:
                    self._logger.info("%s: the server refuses %s (%s); reading %s whole with %s/get",
                                      self._label, request.query.name, error, self._type.name, self._type.name)
                    yield self._whole()
                    return
                raise
            asked_position = request.query.arguments.get("position", 0)
            if windowed and query.ids and query.position is not None and query.position != asked_position:
                raise JmapServerError(
                    f"{request.query.name} answered a page at position {query.position} when asked for position "
                    f"{asked_position}: the server ignores `position` and is not making progress"
                )
            following = follows(progress)
            overlap = following is not None and request.check is None  # the page starts at the id it follows
            if following is not None and (query.ids[:1] if overlap else self._checked(request.check, responses)) != [
                    following]:
                # Objects before the page came or went since the page before: page on from where its ids are now.
                shifts += 1
                if shifts > MAX_WINDOW_SHIFTS_IN_A_ROW:
                    raise JmapServerError(
                        f"{request.query.name} results before position {progress['position']} changed before each "
                        f"of {shifts} pages in a row: the server is not making progress"
                    )
                progress = self._relocated(progress, recent)
                if progress["position"] == 0:
                    window_restarts += 1
                    if window_restarts > MAX_WINDOW_RESTARTS:
                        raise JmapServerError(
                            f"{request.query.name} results moved too far to follow {window_restarts} times in one "
                            "import: the server is not making progress"
                        )
                continue
            shifts = 0
            if not windowed and query.ids and query.ids[-1] in anchors:
                windowed, progress = True, window_start(spec, progress)
                self._logger.info("%s: %s answered again a page ending at %s: the server ignores `anchor`; paging "
                                  "by %s and position instead", self._label, request.query.name, query.ids[-1],
                                  spec.sort_property or "position alone")
                continue
            if query.ids:
                anchors.add(query.ids[-1])
            ids = query.ids if request.via is None else via_ids(
                spec, query.ids, GetResult.of(request.via.name, responses[request.via]).objects)
            got = GetResult.of(request.get.name, responses[request.get])
            last = got.objects.last_of(ids)
            last_value = last.get(spec.sort_property) if last is not None and spec.sort_property else None
            done = self._import_done(query, overlap)
            ids = [object_id for object_id in ids if object_id not in created_after]
            if windowed:
                ids = [object_id for object_id in ids if object_id not in seen]
                next_point = next_window(progress, asked_position, query.ids, last_value) if query.ids else progress
                seen = self._seen_in_window(seen, next_point, got, ids, spec.sort_property)
                recent = query.ids
            else:
                next_point = resume_point(spec, query.ids[-1], last) if query.ids else progress
                seen = dict.fromkeys(ids)
            page_total = None
            if not counted and query.total is not None:
                # What is left from this page on; a page that follows an id starts one position early, at it.
                counted, page_total = True, max(0, query.total - (query.position or 0) - overlap)
            wanted = set(ids)
            not_found = [object_id for object_id in got.not_found if object_id in wanted]
            refetched = self._refetch(not_found, request.get.name)
            assert captured is not None  # taken from the saved state or from this request
            yield Page(itertools.chain(got.objects.in_order(ids), refetched), captured, imported=True,
                       resume=None if done else next_point, total=page_total,
                       count=len(ids) - len(not_found) + len(refetched))
            if done:
                return
            progress = next_point
            size.fit(len(query.ids), responses.size)
            # Let this page go before the next one is fetched: peak memory is one page, not two.
            del responses, query, ids, got, refetched, last, wanted

    @staticmethod
    def _checked(call: MethodCall | None, responses: MethodResponses) -> list[str]:
        """The ids a page's check call found just before the page's position."""
        assert call is not None
        return QueryResult.of(call.name, responses[call]).ids

    def _created_since(self, call: MethodCall, responses: MethodResponses, created: set[str]) -> str | None:
        """Add to `created` what the page's `Foo/changes` (and those after it, while it has more) lists as
        created; the state to ask from next, or None to stop asking: the server cannot tell (no `/changes`,
        or not from this state), and the import yields what it finds, as before."""
        try:
            changes = ChangesResult.of(call.name, responses[call])
            created.update(changes.created)
            while changes.has_more_changes:
                since = changes.new_state
                more = ChangesCall(self._type.name, self._account_id, since, call.call_id).call()
                changes = ChangesResult.of(call.name, self._client.call([more], self._type.using)[more])
                if changes.new_state == since:
                    raise JmapServerError(f"{call.name} says more changes follow state {since} but gives it again")
                created.update(changes.created)
        except (JmapMethodError, JmapServerError) as error:
            self._logger.info("%s: account %s: %s cannot tell which objects were created during the import (%s); "
                              "the import yields them too", self._label, self._account_id, call.name, error)
            return None
        return changes.new_state

    def _relocated(self, progress: ResumePoint, recent: list[str]) -> ResumePoint:
        """Where a page that follows `recent` (the page before's query ids) goes on once objects before it came
        or went: after the last of them still within LOCATE_SPAN positions, else from the window's start."""
        call = locate_call(self._type, self._account_id, progress, LOCATE_SPAN)
        located = QueryResult.of(call.name, self._client.call([call], self._type.using)[call])
        start = call.arguments["position"] if located.position is None else located.position
        found = next((object_id for object_id in reversed(recent) if object_id in located.ids), None)
        if found is None:
            self._logger.info("%s: the objects before position %d moved too far; reading from the window's start "
                              "again", self._label, progress["position"])
            return in_window(progress, 0)
        return {**in_window(progress, start + located.ids.index(found) + 1), "follows": found}

    @staticmethod
    def _seen_in_window(
        seen: dict[str, Any], window: ResumePoint, got: GetResult, new_ids: list[str], sort_property: str | None,
    ) -> dict[str, Any]:
        """The ids a window from `window` may bring again: those seen before and those of this page, less the
        ones whose sort value is before the window's bound (ids without a known value are kept)."""
        fresh = set(new_ids)
        seen = seen | {obj["id"]: obj.get(sort_property) if sort_property else None
                       for obj in got.objects if obj["id"] in fresh}
        if (bound := moment_of(window.get("after"))) is None:
            return seen
        return {object_id: value for object_id, value in seen.items()
                if (moment := moment_of(value)) is None or moment >= bound}

    @staticmethod
    def _import_done(query: QueryResult, follows: bool) -> bool:
        """The import is over when a page is empty (but for the id it follows) or reaches the total counted in
        the same answer.

        A short page alone proves nothing: a server may answer fewer ids than `limit` mid-way. The total is
        always that of the page's own answer: one kept from an earlier page, or from a query with another
        filter (a lost anchor goes on `after` a bound), ended an import 26 emails short of its end (issue 18).
        Mail that arrives meanwhile comes with the changes after the import (the state was taken first).
        """
        if len(query.ids) <= follows:
            return True
        return query.total is not None and query.position is not None and query.position + len(query.ids) >= query.total

    def changes(self, since: str) -> Iterator[Page]:
        size = self._page_size()
        state = since
        states = {since}
        listed: set[str] = set()  # every id this run listed: a page with none new made no progress
        pages_without_new_ids = 0
        while True:
            request, responses = size.send(self._client, functools.partial(
                changes_request, self._type, self._account_id, state), self._type.using)
            changes = ChangesResult.of(request.changes.name, responses[request.changes])
            page_ids = {*changes.created, *changes.updated, *changes.destroyed}
            pages_without_new_ids = 0 if page_ids - listed else pages_without_new_ids + 1
            listed |= page_ids
            repeats_allowed = MAX_CHANGES_PAGES_WITHOUT_NEW_IDS + REPEAT_PAGES_PER_LISTED_ID * len(listed)
            if changes.has_more_changes and (changes.new_state in states or pages_without_new_ids > repeats_allowed):
                what = "a state it gave before" if changes.new_state in states else (
                    f"{'only ids it listed before' if page_ids else 'no changes'}, {pages_without_new_ids} pages "
                    "in a row")
                raise JmapServerError(
                    f"{request.changes.name} says more changes follow state {state} but gives {what} "
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
                changes.new_state, imported=False, destroyed=changes.destroyed, created_ids=changes.created,
                updated=itertools.chain(iter(updated.objects), self._refetch(updated.not_found, request.updated.name)),
            )
            if not changes.has_more_changes:
                break
            state = changes.new_state
            size.fit(changes.count, responses.size)
            del responses, changes, created, updated
        if self._type.reread_after_changes:
            # Every object, as an import reads them: an object the destination holds and this read does not
            # bring is gone, even one created after `new_state` and destroyed since (left out of /changes).
            objects = list(self.objects())  # a type read whole is small (mailboxes): its ids come first
            yield Page(iter(objects), changes.new_state, imported=True, created_ids=[obj["id"] for obj in objects])

    def _page_size(self) -> PageSize:
        """Pages up to maxObjectsInGet, or the read's own `page_limit` below it."""
        limit = self._client.session.limits.max_objects_in_get
        return PageSize(min(limit, self._page_limit or limit), self._label, self._logger)

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
        """The first page of an import, of one object, its objects decoded and dropped: what a read will ask
        for, asked before the read (the server refuses a filter, a property or an argument here, not mid-sync).

        It is the read's own first page, fallbacks included (a refused Mailbox/query read whole, as Apache James
        needs): a probe of its own failed James where the read worked, and passed where the read failed.
        """
        page = next(Sync(self._client, self._type, self._account_id, self._label, self._logger,
                         page_limit=1).pages(None, None))
        collections.deque(itertools.chain(page.created, page.updated), maxlen=0)

    def _whole(self) -> Page:
        """Types without /query (Identity) are few per account: one `Foo/get` with `ids: null`."""
        get = self._type.get(self._account_id, None, "get")
        response = GetResult.of(get.name, self._client.call([get], self._type.using)[get])
        return Page(iter(response.objects), response.state, imported=True,
                    created_ids=[obj["id"] for obj in response.objects])

    def fetch(self, ids: Sequence[str]) -> tuple[list[JsonObject], list[str]]:
        """The objects of `ids` as the type's `/get` reads them, and the ids the server did not find."""
        found: list[JsonObject] = []
        not_found: list[str] = []
        size = self._page_size().current
        for start in range(0, len(ids), size):
            get = self._type.get(self._account_id, list(ids[start:start + size]), "get")
            got = GetResult.of(get.name, self._client.call([get], self._type.using)[get])
            found.extend(got.objects)
            not_found.extend(got.not_found)
        return found, not_found


def read_all(
    client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger
) -> Iterator[JsonObject]:
    """Every object of a small type (mailboxes for a filter or a check), keeping no state.

    Paged by `Foo/query` + `Foo/get` where the type has `/query`, not `Foo/get ids: null`: servers
    may refuse that when an account holds more objects than maxObjectsInGet.
    """
    return Sync(client, data_type, account_id, label, logger).objects()
