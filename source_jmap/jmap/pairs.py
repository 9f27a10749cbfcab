"""Two pages of an import asked at once: the page after the next one is asked for at the same time as it.

Pages by anchor come one after another, each anchored at the last id of the page before, and the server takes
most of an import's time building them (Cyrus: about 1.4 s for a page of 4096 emails, of which `Email/query` is
0.02 s). A server with more than one core builds two pages at once in little more than the time of one (Cyrus,
10,000 emails: 3.97-5.53 s in pages of 4096 one at a time, 2.50-3.01 s in pairs of 2048; bench/README.md).

The second page of a pair is asked from the same anchor as the first, `skip` (the first's limit) objects further
on, one position early: its first id must be the first page's last, or it is thrown away and the import goes on
from the first page as it would have. With that id in place, the second brings what follows it in the server's
list when the second was answered, and the first what led up to it when the first was: an object in one list and
not the other, or whose place differs between them (a removal and an addition that cancel out leave the id in
place), changed after the import's state, and the changes after the import bring it, as between any two pages
asked one after another. A first page that changes the import's course (the last, a lost anchor, a switch to
windows) leaves the second unused, as does any error in the second's answer: nothing it brought is used
unchecked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future

from .calls import ImportRequest
from .errors import JmapError
from .paging import PageSize
from .responses import MethodResponses
from .results import QueryResult
from .resume import ResumePoint

# Seconds thrown away in a row after which an import goes one page at a time: a server that clamps `limit` below the
# page size, or answers short pages, never lines one up (pages of 4 answered 2 at a time: 7 of 17 queries were
# seconds thrown away), and each costs the server a page.
MISSES_IN_A_ROW = 2


class Pairs:
    """When an import's next page gets a second asked with it: by anchor, while the server's count (in the answer
    before) leaves more to read than the next page brings, so that none is asked past the end."""

    def __init__(self, size: PageSize, send: Callable[[ImportRequest], MethodResponses]) -> None:
        """`size`: the import's page size; `send` sends a second's request once as it is (PageSize.ask)."""
        self._size = size
        self._send = send
        self._left: int | None = None  # objects after the last page, by the server's count; None: not known
        self._misses = 0  # seconds thrown away in a row

    def counted(self, query: QueryResult) -> None:
        """What the server's count leaves after a page."""
        self._left = None if query.total is None or query.position is None else (
            query.total - query.position - len(query.ids))

    def second(self, progress: ResumePoint, build: Callable[[int, int], ImportRequest]) -> Second | None:
        """The page after the next one (from `progress`, made by the import's `build(size, skip)`), asked for now;
        None when there is none to ask. It starts at
        the next page's last object (its `skip`-th, which the next page must then not pass), so a page of one object
        has none. Where the two bring all that is left, they share it evenly: the pair takes as long as its larger
        page."""
        size = self._size.current
        if (size < 2 or self._left is None or self._left <= size or progress.anchor is None
                or self._misses >= MISSES_IN_A_ROW):
            return None
        skip = min(size, (self._left + 1) // 2)
        return Second(build(size, skip), skip, self._send)

    def follow(self, second: Second, anchor: str | None) -> tuple[MethodResponses, QueryResult] | None:
        """`second.following(anchor)`, counting the seconds thrown away in a row."""
        following = second.following(anchor)
        self._misses = 0 if following is not None else self._misses + 1
        return following


class Second:
    """The second page of a pair, asked for on a thread of its own as soon as it is made."""

    def __init__(self, request: ImportRequest, skip: int, send: Callable[[ImportRequest], MethodResponses]) -> None:
        self.request = request
        self.skip = skip
        self._answer: Future[MethodResponses] = Future()
        # Daemon: an import stopped while this is under way leaves it to end within the client's deadline (a
        # cancelled client sends nothing more); nothing waits for it.
        threading.Thread(target=self._send, args=(send,), name="second-page", daemon=True).start()

    def _send(self, send: Callable[[ImportRequest], MethodResponses]) -> None:
        try:
            self._answer.set_result(send(self.request))
        except BaseException as error:  # any: raised where the answer is taken
            self._answer.set_exception(error)

    def following(self, anchor: str | None) -> tuple[MethodResponses, QueryResult] | None:
        """The answer, with its query less its first id, when that id is `anchor` (the first page's last) and more
        follow; None when not, or when anything in the answer failed (a failed `Foo/changes` would stop the
        import's tracking of newcomers): the import then asks for the page after `anchor` itself."""
        if anchor is None:  # the first page changed the import's course
            return None
        try:
            responses = self._answer.result()
            for call in self.request.calls:
                responses[call]  # raises the call's error
            query = QueryResult.of(self.request.query.name, responses[self.request.query])
        except JmapError:
            return None
        if query.ids[:1] != [anchor] or len(query.ids) < 2:  # an empty page would end the import: its own request says
            return None
        return responses, QueryResult(query.ids[1:], None if query.position is None else query.position + 1,
                                      query.total, query.limit)
