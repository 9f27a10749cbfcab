"""Objects an import meets that are newer than the state it captured: left to the changes after the import.

An import captures its state first, then pages a query that shows the account as it is at each page, so an
object created after the captured state can be on a page. Should it be destroyed later, `/changes` since the
captured state leaves it out altogether (RFC 8620 section 5.2 allows it for an object created and destroyed
since the state; Cyrus 3.6 does: Email/changes and Thread/changes list neither a mail appended and expunged
after the state nor its thread): the destination would keep it for good, at exit 0, however many syncs
follow. Seen on Cyrus (integration_tests/test_kill_loop_changes.py): imports of threads and emails, killed,
met a thread appended after their states; expunged after the imports, its 2 emails and 2 threads (Cyrus split
the reply off) stayed in the destination, each saved state already the server's, Thread/get saying notFound.

So every import page asks, in its own request and after its `/get`, `Foo/changes` since the last state this
import knows (the captured one at first): the ids created since the captured state are not emitted by the
import. The changes after the import bring those still there (as created); those destroyed meanwhile never
reach the destination. An answer that does not reach the page (`hasMoreChanges`) is followed to the end and
the page asked again, so that every object on a page was created before the changes that were asked after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .client import JmapClient
from .datatype import DataType
from .errors import JmapMethodError, JmapServerError
from .responses import JsonObject, MethodResponses
from .results import ChangesResult
from .retry import Action, method_error_action
from .wire import MethodCall, ResultReference

# As for the changes of an incremental sync (sync.py): a few empty pages with a new state are possible (Cyrus's
# states are one counter for every type), an endless run of them is a server going round.
MAX_EMPTY_PAGES_IN_A_ROW = 10


class Newcomers:
    """The ids created since an import's captured state, learnt page by page (see the module docstring)."""

    def __init__(self, client: JmapClient, data_type: DataType, account_id: str, captured: str | None) -> None:
        self._client = client
        self._type = data_type
        self._account_id = account_id
        self._since = captured  # None until the first page's request captures it
        self._created: set[str] = set()
        # Without `/changes` from the captured state (none at all, or it cannot calculate them) no sync will
        # ever ask for changes since it: the next one reads or imports the type again.
        self._following = True

    def call(self, captured: MethodCall | None, size: int) -> MethodCall | None:
        """The `Foo/changes` that follows a page's `/get` in its request; `captured` is the request's own
        capture of the state, where it has one."""
        if not self._following:
            return None
        since: str | ResultReference | None = captured.ref("/state") if captured is not None else self._since
        assert since is not None  # the first request of an import captures the state
        return MethodCall(f"{self._type.name}/changes",
                          {"accountId": self._account_id, "sinceState": since, "maxChanges": size}, "newcomers")

    def reached_page(self, call: MethodCall | None, responses: MethodResponses) -> bool:
        """Take the changes asked with a page. False when they stop short of it: they were followed to the end
        meanwhile, and the page must be asked again."""
        if call is None:
            return True
        try:
            changes = ChangesResult.of(call.name, responses[call])
        except JmapMethodError as error:
            if method_error_action(error) not in (Action.RESYNC, Action.READ_WHOLE):
                raise
            self._following = False
            return True
        self._take(changes)
        if not changes.has_more_changes:
            return True
        self._follow(call.arguments["maxChanges"])
        return False

    def old(self, objects: Iterable[JsonObject]) -> Iterator[JsonObject]:
        """The objects that are not newer than the captured state."""
        return (obj for obj in objects if obj.get("id") not in self._created)

    def _take(self, changes: ChangesResult) -> None:
        self._created.update(changes.created)
        self._since = changes.new_state

    def _follow(self, size: int) -> None:
        """`Foo/changes` until no more follow: the ids created since the captured state, up to now."""
        states: set[str | None] = {self._since}
        empty = 0
        while True:
            call = MethodCall(f"{self._type.name}/changes",
                              {"accountId": self._account_id, "sinceState": self._since, "maxChanges": size},
                              "newcomers")
            changes = ChangesResult.of(call.name, self._client.call([call], self._type.using)[call])
            empty = empty + 1 if changes.count == 0 else 0
            if changes.has_more_changes and (changes.new_state in states or empty > MAX_EMPTY_PAGES_IN_A_ROW):
                raise JmapServerError(
                    f"{call.name} says more changes follow state {self._since} but gives "
                    f"{'a state it gave before' if changes.new_state in states else 'no changes'} "
                    f"({changes.new_state}): the server is not making progress"
                )
            states.add(changes.new_state)
            self._take(changes)
            if not changes.has_more_changes:
                return
