"""Two pages of an import asked at once: the page after the next one is asked for at the same time as it.

Pages by anchor come one after another, each anchored at the last id of the page before, and the server takes
most of an import's time building them (Cyrus: about 1.4 s for a page of 4096 emails, of which `Email/query` is
0.02 s). A server with more than one core builds two pages at once in little more than the time of one (Cyrus,
10,000 emails: 3.97-5.53 s in pages of 4096 one at a time, 2.50-3.01 s in pairs of 2048; bench/README.md).

The second page of a pair is asked from the same anchor as the first, `skip` (the first's limit) objects further
on, one position early: its first id must be the first page's last, or it is thrown away and the import goes on
from the first page as it would have. That id shows that what lies between the two is what the first page
brought: objects keep their order (by sort value, then id), so an object that came or went between them moves
every later one by a position. A first page that changes the import's course (the last, a lost anchor, a switch to
windows) leaves the second unused, as does any error of the second: nothing it brought is used unchecked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from .calls import ImportRequest, import_request
from .client import JmapClient
from .datatype import DataType
from .errors import JmapError
from .paging import PageSize
from .responses import MethodResponses
from .results import QueryResult
from .resume import ResumePoint
from .wire import MethodCall


class Pairs:
    """When an import's next page gets a second asked with it: by anchor, while the server's count (in the answer
    before) leaves more to read than the next page brings, so that none is asked past the end."""

    def __init__(self, client: JmapClient, data_type: DataType, account_id: str, size: PageSize) -> None:
        self._client = client
        self._type = data_type
        self._account_id = account_id
        self._size = size
        self._left: int | None = None  # objects after the last page, by the server's count; None: not known

    def counted(self, query: QueryResult) -> None:
        """What the server's count leaves after a page."""
        self._left = None if query.total is None or query.position is None else (
            query.total - query.position - len(query.ids))

    def second(self, progress: ResumePoint, changes_since: str | None) -> Second | None:
        """The page after the next one (from `progress`), asked for now; None when there is none to ask. It starts at
        the next page's last object (its `skip`-th, which the next page must then not pass), so a page of one object
        has none. Where the two bring all that is left, they share it evenly: the pair takes as long as its larger
        page."""
        size = self._size.current
        if size < 2 or self._left is None or self._left <= size or progress.anchor is None:
            return None
        skip = min(size, (self._left + 1) // 2)
        request = import_request(self._type, self._account_id, False, progress, True, changes_since, size, skip=skip)
        return Second(request, skip, lambda second: self._size.ask(self._client, second, self._type.using))


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
        follow; None when not, or when the request failed: the import then asks for the page after `anchor` itself."""
        try:
            responses = self._answer.result()
        except JmapError:
            return None
        if anchor is None or _refused(responses, self.request.page_calls):
            return None
        query = QueryResult.of(self.request.query.name, responses[self.request.query])
        if query.ids[:1] != [anchor] or len(query.ids) < 2:  # an empty page would end the import: its own request says
            return None
        return responses, QueryResult(query.ids[1:], None if query.position is None else query.position + 1,
                                      query.total, query.limit)


def _refused(responses: MethodResponses, calls: Sequence[MethodCall]) -> bool:
    names = {call.name for call in calls}
    return any(error.method in names for error in responses.method_errors())
