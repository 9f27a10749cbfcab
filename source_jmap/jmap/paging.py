"""How many objects one page asks for: the server's limit, its refusals, and a byte budget.

A page starts at the server's maxObjectsInGet. A server that refuses a page for its size (policy.py's
SHRINK rows: `requestTooLarge`, or Cyrus's `limit` problem on maxObjectsInGet) is asked again for half as
many, and never for more again in this read. A page is held as the JSON the server sent, so its
bytes, not its object count, bound the memory of a read: long bodies or many headers get smaller
pages, and pages grow back, never beyond what the server allows, when the objects get smaller.

A page is sized by the one before it, so a page of objects much larger than those before (a run of
long bodies) can overshoot the budget: past ANSWER_CAP_IN_BUDGETS budgets its answer is not held but
asked for again in halves (policy.py's SHRINK row for an answer too large).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from .client import JmapClient
from .errors import JmapAnswerTooLargeError, JmapError, JmapMethodError, JmapRequestError
from .policy import Action, resolve
from .responses import MethodResponses
from .wire import MethodCall

logger = logging.getLogger("source_jmap.jmap")

# How much JSON one page may bring: what a read holds in memory at once. A page of 4096 emails
# with text bodies is about 24 MB (bench/README.md), well within it.
PAGE_BYTES_BUDGET = 64_000_000
# The most a page's answer may bring before it is asked for again in halves, in budgets: the page was sized
# to one budget, and the average size of thousands of objects rarely swings fourfold from one page to the next.
ANSWER_CAP_IN_BUDGETS = 4


class Request(Protocol):
    """The method calls of one HTTP request, kept by name so that their responses can be looked up.

    `page_calls` are those that list and get the page's objects: their refusal for size is the page's. The
    others (an import page's `Foo/changes` and check) have their failures handled by whoever reads their answers.
    """

    @property
    def calls(self) -> Sequence[MethodCall]: ...

    @property
    def page_calls(self) -> Sequence[MethodCall]: ...


R = TypeVar("R", bound=Request)


def refused_for_size(error: JmapError) -> bool:
    """Whether the server refused a request for asking too many objects at once, or its answer was too large to
    hold, so that fewer may pass."""
    return resolve(error).action is Action.SHRINK


class PageSize:
    """The size of the pages of one read, between 1 and the server's limit."""

    def __init__(self, ceiling: int, label: str, log: logging.Logger, pages_held: int = 1) -> None:
        """`pages_held`: how many pages the read holds at once (two when it reads ahead, three for an import's
        pairs): each gets that share of the budget."""
        self._label = label
        self._log = log
        self._budget = PAGE_BYTES_BUDGET // pages_held
        self.ceiling = ceiling
        self.current = ceiling
        self._answer_cap = self._budget * ANSWER_CAP_IN_BUDGETS

    def send(self, client: JmapClient, build: Callable[[int], R], using: Sequence[str]) -> tuple[R, MethodResponses]:
        """Send `build(size)`, halving the size while the server refuses the request for its size, or its
        answer comes to more than ANSWER_CAP_IN_BUDGETS budgets.

        `build` makes the calls for a page of `size` objects (a query `limit`, a `maxChanges`).
        Any other error, or a refusal at size 1, is raised.
        """
        while True:
            request = build(self.current)
            try:
                # One object alone is held whatever its size, within the client's own cap.
                responses = client.call(request.calls, using, max_bytes=self._answer_cap if self.current > 1 else None)
                sized = {call.name for call in request.page_calls}
                refusal = next((error for error in responses.method_errors()
                                if error.method in sized and refused_for_size(error)), None)
                if refusal is not None:
                    raise refusal
                return request, responses
            except JmapAnswerTooLargeError as error:
                if not refused_for_size(error) or self.current == 1:
                    raise
                self._log.warning("%s: a page of %d objects came to more than %d MB; asking for %d at a time",
                                  self._label, self.current, self._answer_cap // 1_000_000, self.current // 2)
                self.current //= 2
            except (JmapRequestError, JmapMethodError) as error:
                if not refused_for_size(error) or self.current == 1:
                    raise
                logger.warning("The JMAP server refused %d objects in one request (%s); asking for %d",
                               self.current, error, self.current // 2)
                self.current //= 2
                self.ceiling = self.current

    def ask(self, client: JmapClient, request: R, using: Sequence[str]) -> MethodResponses:
        """Send `request` once as it is, its answer within ANSWER_CAP_IN_BUDGETS budgets: a page asked for ahead of
        its turn, which its caller throws away if refused."""
        return client.call(request.calls, using, max_bytes=self._answer_cap)

    def fit(self, objects: int, answer_bytes: int) -> None:
        """Size the next page so that its answer stays within the byte budget, judging by this one."""
        if not objects or not answer_bytes:
            self.current = self.ceiling
            return
        fitting = max(1, min(self.ceiling, self._budget * objects // answer_bytes))
        if fitting < self.current:
            self._log.info(
                "%s: %d objects came to %.1f MB; asking for %d at a time to stay within %d MB a page",
                self._label, objects, answer_bytes / 1e6, fitting, self._budget // 1_000_000,
            )
        self.current = fitting
