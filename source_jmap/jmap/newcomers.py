"""The objects created after an import's state, which the import leaves to the /changes that follow it.

One the import yielded and the server destroyed before those changes is in none of their lists (RFC 8620 section
5.2: created and destroyed since the state, it SHOULD be left out), so the destination would keep it for ever.
Tracked by a `Foo/changes` in each page's request, from the import's state on.
"""

from __future__ import annotations

import logging

from .client import JmapClient
from .datatype import DataType
from .errors import JmapMethodError, JmapServerError
from .methods import ChangesCall
from .responses import MethodResponses
from .results import ChangesResult
from .wire import MethodCall


class Newcomers:
    """The ids created since the import's state, as far as the pages' `Foo/changes` told; `since` is the state to
    ask from next ("": the one captured in the same request), None once the server cannot tell."""

    def __init__(self, client: JmapClient, data_type: DataType, account_id: str, label: str, logger: logging.Logger,
                 since: str | None) -> None:
        self._client = client
        self._type = data_type
        self._account_id = account_id
        self._label = label
        self._logger = logger
        self.since = since
        self.ids: set[str] = set()

    def add(self, call: MethodCall, responses: MethodResponses) -> None:
        """Add what the page's `Foo/changes` (and those after it, while it has more) lists as created, and ask from
        its new state next; or stop asking: the server cannot tell (no `/changes`, or not from this state), and the
        import yields what it finds, as before."""
        try:
            changes = ChangesResult.of(call.name, responses[call])
            self.ids.update(changes.created)
            while changes.has_more_changes:
                since = changes.new_state
                more = ChangesCall(self._type.name, self._account_id, since, call.call_id).call()
                changes = ChangesResult.of(call.name, self._client.call([more], self._type.using)[more])
                if changes.new_state == since:
                    raise JmapServerError(f"{call.name} says more changes follow state {since} but gives it again")
                self.ids.update(changes.created)
        except (JmapMethodError, JmapServerError) as error:
            self._logger.info("%s: account %s: %s cannot tell which objects were created during the import (%s); "
                              "the import yields them too", self._label, self._account_id, call.name, error)
            self.since = None
            return
        self.since = changes.new_state
