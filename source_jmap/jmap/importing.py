"""An import: `Foo/get ids: []` captures the state first, then pages of `Foo/query` with `Foo/get` of its ids in
the same request (back-reference), each page anchored after the last id of the page before, until a page reaches
the `total` of its own answer or comes back empty. A page's `resume` point lets a killed import go on where it was.
Without usable anchors, pages go by windows of sort value and position (calls.py).

Objects created after the import's state, or destroyed before a page's request ended, are left to the /changes
that follow it (a `Foo/changes` and the page's ids again in each request). Method errors: policy.py's rows; a
server without progress (ignored anchor or position, results that never hold still) is stopped in one line."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from .calls import ImportRequest, import_request, locate_call, seen_in_window, via_ids
from .client import JmapClient
from .datatype import DataType
from .errors import JmapMethodError, JmapServerError
from .newcomers import Newcomers
from .page import ImportPage, WholePage
from .paging import PageSize
from .pairs import Pairs
from .policy import Action, resolve
from .responses import JsonObject, MethodResponses
from .results import GetResult, QueryResult
from .resume import ResumePoint

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


class Import:
    """One import's pages and running state, from `resume` on; the state is captured first unless `captured` is
    given (`stateless`: none is captured, and the pages' state is never saved).

    Pages go by anchor. A lost anchor (anchorNotFound) goes on from the last sort value; past
    MAX_ANCHOR_RESTARTS lost anchors, or on a server that refuses or ignores `anchor`, pages go by
    windows of sort value and position instead (calls.py), which need no anchor at all. `whole` reads the type
    whole, `refetch` asks once more for ids a `/get` did not find (sync.py's).
    """

    def __init__(
        self, client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger,
        size: PageSize, whole: Callable[[], WholePage], refetch: Callable[[list[str], str], list[JsonObject]],
        captured: str | None, resume: ResumePoint | None, stateless: bool, pairs: bool = False,
    ) -> None:
        assert data_type.query is not None  # types without /query are read whole
        self._client = client
        self._type = data_type
        self._spec = data_type.query
        self._account_id = account_id
        self._label = label
        self._logger = logger
        self._size = size
        self._whole = whole
        self._refetch = refetch
        self._pairs = Pairs(size, functools.partial(size.ask, client, using=data_type.using)) if pairs else None
        self._progress = resume or ResumePoint()
        self._counted = False  # the first page says how many objects this import reads
        self._anchors: set[str] = set()  # the last id of every page: a page that ends at one again made no progress
        self._windowed = self._progress.windowed
        # Ids already yielded that a window may bring again, with their sort values: by windows, the objects of
        # the window's bound and later; by anchors, the last page's (a switch to windows reads it again).
        self._seen: dict[str, Any] = {}
        self._recent = [object_id] if (object_id := self._progress.following) else []  # the page before's query ids
        self._lost_anchors = self._window_restarts = self._shifts = 0
        self._newcomers = Newcomers(client, data_type, account_id, label, logger, None if stateless else captured or "")
        self._captured = "" if stateless else captured  # "": the pages' state is never saved

    def pages(self) -> Iterator[ImportPage | WholePage]:
        """The import's pages, until the last; by anchor, two asked at once where `pairs` (pairs.py)."""
        done = False
        while not done:
            done = yield from self._round()

    def _round(self) -> Generator[ImportPage | WholePage, None, bool]:
        """One request's page, or a pair's two; True once the import is over. The answers are local to the round:
        released before the next round's are asked for (one page held at a time, or a pair and the page before)."""
        second = None if self._pairs is None else self._pairs.second(self._progress, self._build)
        most = None if second is None else second.skip  # the objects the second page starts after
        request, responses = self._size.send(self._client, functools.partial(self._build, most=most),
                                             self._type.using)
        done = yield from self._request(request, responses)
        if done or second is None or self._pairs is None:
            return done
        following = self._pairs.follow(second, self._progress.anchor)
        return following is not None and (yield from self._request(second.request, *following))

    def _request(self, request: ImportRequest, responses: MethodResponses, query: QueryResult | None = None,
                 ) -> Generator[ImportPage | WholePage, None, bool]:
        """A request's page when it brings one (`query`: its query's result, as a pair's second page has it);
        True once the import is over."""
        if request.state is not None:
            self._captured = GetResult.of(request.state.name, responses[request.state]).state
        if request.created is not None:
            self._newcomers.add(request.created, responses)
        try:
            query = query or QueryResult.of(request.query.name, responses[request.query])
        except JmapMethodError as error:
            if self._goes_on_after(error, request.query.name):
                return False
            yield self._whole()
            return True
        if not self._in_place(request, responses, query) or self._anchor_ignored(request.query.name, query):
            return False
        page, next_point = self._page(request, responses, query)
        yield page
        if next_point is None:
            return True
        self._progress = next_point
        if self._pairs is not None:
            self._pairs.counted(query)
        self._size.fit(len(query.ids), responses.size)
        return False

    def _build(self, size: int, skip: int = 0, most: int | None = None) -> ImportRequest:
        """The request of the page from `progress`, of at most `most` objects; `skip`: a pair's second (calls.py)."""
        return import_request(self._type, self._account_id, self._captured is None, self._progress, True,
                              self._newcomers.since, min(size, most or size), skip)

    def _to_windows(self) -> None:
        """Page by windows of sort value and position from here on, which need no anchor."""
        self._windowed = True
        self._progress = self._progress.window_start(self._spec.sort_property)

    def _goes_on_after(self, error: JmapMethodError, method: str) -> bool:
        """After the page's query failed: True to page on from where this sets the import (a lost anchor, or
        windows instead of anchors), False to read the type whole (a query refused before any page); any other
        error is raised."""
        action = resolve(error).action
        if action is Action.RESTART and self._progress.anchor is None:
            raise JmapServerError(
                f"{method} answered anchorNotFound to a query without an anchor (asked from {self._progress}): the "
                "server is not making progress"
            ) from None
        if action is Action.RESTART and self._lost_anchors < MAX_ANCHOR_RESTARTS:
            self._lost_anchors += 1
            self._progress = self._progress.restarted(self._spec.sort_property)
            self._logger.info("%s: the last imported object is gone; going on from %s", self._label, self._progress)
            return True
        if action in (Action.RESTART, Action.NO_ANCHOR) and not self._windowed:
            self._to_windows()
            self._logger.info("%s: %s; paging by %s and position instead", self._label,
                              f"the server refuses `anchor` ({error})" if action is Action.NO_ANCHOR
                              else f"{self._lost_anchors + 1} anchors of this import were not found",
                              self._spec.sort_property or "position alone")
            return True
        if not self._anchors and self._type.read_whole_if_query_refused:
            self._logger.info("%s: the server refuses %s (%s); reading %s whole with %s/get",
                              self._label, method, error, self._type.name, self._type.name)
            return False
        raise error

    def _overlap(self, request: ImportRequest) -> bool:
        """The page starts at the id it follows (one position early)."""
        return self._progress.following is not None and request.check is None

    def _in_place(self, request: ImportRequest, responses: MethodResponses, query: QueryResult) -> bool:
        """Whether the page starts where it should; if not, the import goes on from where its ids are now."""
        asked_position = request.query.arguments.get("position", 0)
        if self._windowed and query.ids and query.position is not None and query.position != asked_position:
            raise JmapServerError(
                f"{request.query.name} answered a page at position {query.position} when asked for position "
                f"{asked_position}: the server ignores `position` and is not making progress"
            )
        following, check = self._progress.following, request.check
        # The id just before the page: its first (it starts at the id it follows), or what its check call found.
        if following is None or (query.ids[:1] if check is None else QueryResult.of(check.name, responses[check]).ids
                                 ) == [following]:
            self._shifts = 0
            return True
        # Objects before the page came or went since the page before: page on from where its ids are now.
        self._shifts += 1
        if self._shifts > MAX_WINDOW_SHIFTS_IN_A_ROW:
            raise JmapServerError(
                f"{request.query.name} results before position {self._progress.position} changed before each "
                f"of {self._shifts} pages in a row: the server is not making progress"
            )
        self._progress = self._relocated()
        if self._progress.position == 0:
            self._window_restarts += 1
            if self._window_restarts > MAX_WINDOW_RESTARTS:
                raise JmapServerError(
                    f"{request.query.name} results moved too far to follow {self._window_restarts} times in one "
                    "import: the server is not making progress"
                )
        return False

    def _anchor_ignored(self, method: str, query: QueryResult) -> bool:
        """A page by anchors that ends where one before it ended, or brings an object of the page before (it starts
        after them): the server ignores `anchor`; on by windows."""
        if self._windowed or not query.ids or (query.ids[-1] not in self._anchors
                                               and self._seen.keys().isdisjoint(query.ids)):
            return False
        self._to_windows()
        self._logger.info("%s: %s answered a page that goes back over the pages before (it ends at %s): the server "
                          "ignores `anchor`; paging by %s and position instead", self._label, method, query.ids[-1],
                          self._spec.sort_property or "position alone")
        return True

    def _page(
        self, request: ImportRequest, responses: MethodResponses, query: QueryResult,
    ) -> tuple[ImportPage, ResumePoint | None]:
        """The page of a request that starts where it should, and where the next one starts (None: the last)."""
        overlap = self._overlap(request)
        if query.ids:
            self._anchors.add(query.ids[-1])
        ids = query.ids if request.via is None else via_ids(
            self._spec, query.ids, GetResult.of(request.via.name, responses[request.via]).objects)
        got = GetResult.of(request.get.name, responses[request.get])
        next_point, ids = self._advance(request, query, got, self._present(request, responses, got, ids),
                                        got.objects.last_of(ids))
        resume = None if self._last_page(query, overlap) else next_point
        wanted = set(ids)
        not_found = [object_id for object_id in got.not_found if object_id in wanted]
        refetched = self._refetch(not_found, request.get.name)
        assert self._captured is not None  # taken from the saved state or from this request
        return ImportPage(created=itertools.chain(got.objects.in_order(ids), refetched), state=self._captured,
                          resume=resume, total=self._total(query, overlap),
                          count=len(ids) - len(not_found) + len(refetched)), resume

    def _present(self, request: ImportRequest, responses: MethodResponses, got: GetResult, ids: list[str]) -> list[str]:
        """The page's ids less those created after the import's state and those destroyed before the page's request
        ended: the /changes that follow the import bring both."""
        ids = [object_id for object_id in ids if object_id not in self._newcomers.ids]
        if request.alive is None or self._newcomers.since is None:
            return ids
        alive = {obj["id"] for obj in GetResult.of(request.alive.name, responses[request.alive]).objects}
        return [object_id for object_id in ids if object_id in alive or object_id in got.not_found]

    def _advance(
        self, request: ImportRequest, query: QueryResult, got: GetResult, ids: list[str], last: JsonObject | None,
    ) -> tuple[ResumePoint, list[str]]:
        """Where the page after this one starts (`last`: the page's last object in query order), and the page's
        ids less those yielded before that a window brings again; what the next page may bring again is noted."""
        sort_property = self._spec.sort_property
        if not self._windowed:
            self._seen = dict.fromkeys(ids)
            return (ResumePoint.after_page(sort_property, query.ids[-1], last) if query.ids else self._progress), ids
        ids = [object_id for object_id in ids if object_id not in self._seen]
        last_value = last.get(sort_property) if last is not None and sort_property else None
        asked_position = request.query.arguments.get("position", 0)
        next_point = self._progress.next_window(asked_position, query.ids, last_value) if query.ids else self._progress
        self._seen = seen_in_window(self._seen, next_point, got.objects, ids, sort_property)
        self._recent = query.ids
        return next_point, ids

    def _total(self, query: QueryResult, overlap: bool) -> int | None:
        """The server's count of what this import reads, on its first page that has one."""
        if self._counted or query.total is None:
            return None
        self._counted = True
        # What is left from this page on; a page that follows an id starts one position early, at it.
        return max(0, query.total - (query.position or 0) - overlap)

    def _relocated(self) -> ResumePoint:
        """Where a page that follows the page before's query ids goes on once objects before it came or went:
        after the last of them still within LOCATE_SPAN positions, else from the window's start."""
        call = locate_call(self._type, self._account_id, self._progress, LOCATE_SPAN)
        located = QueryResult.of(call.name, self._client.call([call], self._type.using)[call])
        start = call.arguments["position"] if located.position is None else located.position
        found = next((object_id for object_id in reversed(self._recent) if object_id in located.ids), None)
        if found is None:
            self._logger.info("%s: the objects before position %d moved too far; reading from the window's start "
                              "again", self._label, self._progress.position)
            return self._progress.in_window(0)
        return self._progress.in_window(start + located.ids.index(found) + 1, found)

    @staticmethod
    def _last_page(query: QueryResult, follows: bool) -> bool:
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
