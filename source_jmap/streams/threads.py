from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..jmap.client import JmapClient, MethodCall, MethodResponses, ResultReference
from .base import JmapStream
from .selection import EmailSelection


class ThreadStream(JmapStream):
    """Thread objects (RFC 8621 section 3): `id` and `emailIds`.

    JMAP has no Thread/query: the import pages the account's emails collapsed to one per
    thread, takes their threadIds and gets those threads, all three calls in one request.
    """

    name = "threads"
    jmap_type = "Thread"

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection) -> None:
        super().__init__(client, accounts)
        self._selection = selection

    def page_calls(self, account_id: str, query_arguments: dict[str, Any]) -> list[MethodCall]:
        query = MethodCall("Email/query", {**query_arguments, "collapseThreads": True}, "query")
        thread_ids = MethodCall(
            "Email/get",
            {"accountId": account_id, "ids": ResultReference("query", query.name, "/ids"), "properties": ["threadId"]},
            "threadIds",
        )
        threads = self._get_call(account_id, ResultReference("threadIds", thread_ids.name, "/list/*/threadId"), "get")
        return [query, thread_ids, threads]

    def page_ids(self, responses: MethodResponses) -> list[str]:
        thread_of = {email["id"]: email["threadId"] for email in responses["threadIds"]["list"]}
        return [thread_of[email_id] for email_id in responses["query"]["ids"] if email_id in thread_of]

    def query_sort(self) -> list[dict[str, Any]]:
        return [{"property": "receivedAt", "isAscending": True}]

    def query_filter(self, account_id: str, progress: Mapping[str, Any]) -> dict[str, Any] | None:
        return self._selection.query_filter(account_id)
