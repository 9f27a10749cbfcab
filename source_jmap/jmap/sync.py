"""The sync engine: the objects of one JMAP data type in one account, as pages, for an import or since a state.

Import:       pages of `Foo/query` with `Foo/get` of its ids, from a state captured first (importing.py).
Changes:      `Foo/changes` with `Foo/get` of created and updated ids in the same request, until
              `hasMoreChanges` is false.
Whole read:   `Foo/get ids: null`, for types without `/query`.

Pages (page.py) hold the server's JSON and decode each object when it is iterated. The engine knows nothing
of what becomes of the objects; what it does about each method error is policy.py's rows. A server
that answers without progress (an ignored anchor, states that go round) is stopped with one line.
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
from collections.abc import Generator, Iterator, Sequence

from .ahead import read_ahead
from .calls import changes_request
from .client import JmapClient
from .datatype import DataType
from .errors import JmapMethodError, JmapServerError
from .importing import Import
from .page import ChangesPage, ImportPage, Page, WholePage
from .paging import PageSize
from .policy import Action, resolve
from .responses import JsonObject
from .results import ChangesResult, GetResult
from .resume import ResumePoint

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
# Pages a read holds at once when it reads ahead: the one being used and the next, asked for meanwhile (ahead.py);
# an import's, the one being used and the two of a pair (pairs.py). Each gets that share of the byte budget.
PAGES_HELD_AHEAD = 2
IMPORT_PAGES_HELD_AHEAD = 3


class Sync:
    """Reads one data type of one account; log lines go to `logger` and start with `label`."""

    def __init__(
        self, client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger,
        page_limit: int | None = None, ahead: bool = False,
    ) -> None:
        """`page_limit`: the most objects a page asks for, below the server's own limit (a probe's one). `ahead`:
        `pages` asks for each next page while the one before is used (ahead.py), an import's pages two at once
        (pairs.py); each page then gets its share of the byte budget."""
        self._client = client
        self._page_limit = page_limit
        self._ahead = ahead
        self._type = data_type
        self._account_id = account_id
        self._label = label
        self._logger = logger

    def pages(self, state: str | None, resume: ResumePoint | None) -> Generator[Page]:
        """From a saved state: the changes since it, or an import when the table says the state is of no use.

        `resume` set: an import under way, whose `state` was captured before its first page.
        """
        pages = self._pages(state, resume)
        return read_ahead(pages) if self._ahead else pages

    def _pages(self, state: str | None, resume: ResumePoint | None) -> Generator[Page]:
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

    def _import(
        self, captured: str | None, resume: ResumePoint | None, stateless: bool,
    ) -> Iterator[ImportPage | WholePage]:
        """Pages of a full import (importing.py), from `resume` on; the state is captured first unless `captured`
        is given. Types without /query are read whole."""
        if self._type.query is None:
            yield self._whole()
            return
        if resume is not None and resume != ResumePoint():  # {}: an import starts
            self._logger.info("%s: resuming the import of account %s at %s", self._label, self._account_id, resume)
        yield from Import(self._client, self._type, self._account_id, self._label, self._logger,
                          self._page_size(IMPORT_PAGES_HELD_AHEAD), self._whole, self._refetch, captured, resume,
                          stateless, pairs=self._ahead).pages()

    def changes(self, since: str) -> Iterator[ChangesPage | WholePage]:
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
            yield ChangesPage(
                created=itertools.chain(iter(created.objects), self._refetch(created.not_found, request.created.name)),
                state=changes.new_state, destroyed=changes.destroyed, created_ids=changes.created,
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
            yield WholePage(created=iter(objects), state=changes.new_state, created_ids=[obj["id"] for obj in objects])

    def _page_size(self, held_ahead: int = PAGES_HELD_AHEAD) -> PageSize:
        """Pages up to maxObjectsInGet, or the read's own `page_limit` below it; `held_ahead` pages held at once
        when reading ahead."""
        limit = self._client.session.limits.max_objects_in_get
        return PageSize(min(limit, self._page_limit or limit), self._label, self._logger,
                        held_ahead if self._ahead else 1)

    def _refetch(self, not_found: list[str], method: str) -> list[JsonObject]:
        """Ids the server listed but could not get: asked for once more, and those still missing reported."""
        if not not_found:
            return []
        found, missing = self.fetch(not_found)
        if missing:
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
        collections.deque(page.created, maxlen=0)  # the first page of a read is never one of changes

    def _whole(self) -> WholePage:
        """Types without /query (Identity) are few per account: one `Foo/get` with `ids: null`."""
        get = self._type.get(self._account_id, None, "get")
        response = GetResult.of(get.name, self._client.call([get], self._type.using)[get])
        return WholePage(created=iter(response.objects), state=response.state,
                         created_ids=[obj["id"] for obj in response.objects])

    def fetch(self, ids: Sequence[str]) -> tuple[list[JsonObject], list[str]]:
        """The objects of `ids` as the type's `/get` reads them, and the ids it did not bring, sorted (in `notFound`
        or left out of both lists)."""
        found: list[JsonObject] = []
        size = self._page_size().current
        for start in range(0, len(ids), size):
            get = self._type.get(self._account_id, list(ids[start:start + size]), "get")
            found.extend(GetResult.of(get.name, self._client.call([get], self._type.using)[get]).objects)
        return found, sorted(set(ids) - {obj["id"] for obj in found})


def read_all(
    client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger
) -> Iterator[JsonObject]:
    """Every object of a small type (mailboxes for a filter or a check), keeping no state.

    Paged by `Foo/query` + `Foo/get` where the type has `/query`, not `Foo/get ids: null`: servers
    may refuse that when an account holds more objects than maxObjectsInGet.
    """
    return Sync(client, data_type, account_id, label, logger).objects()
