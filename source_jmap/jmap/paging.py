"""Read every object of a small type (mailboxes, identities) without `ids: null`.

Servers may refuse `Foo/get` with `ids: null` when an account holds more objects than
maxObjectsInGet; paging `Foo/query` + `Foo/get` by position is always allowed. Pages shrink
when the server refuses their size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .client import JmapClient, MethodCall, ResultReference


def fetch_all(
    client: JmapClient, jmap_type: str, account_id: str, properties: Sequence[str], using: Sequence[str]
) -> Iterator[dict[str, Any]]:
    limit = client.session.limits.max_objects_in_get
    position = 0

    def page(size: int) -> list[MethodCall]:
        query = MethodCall(f"{jmap_type}/query", {"accountId": account_id, "position": position, "limit": size}, "q")
        get = MethodCall(
            f"{jmap_type}/get",
            {"accountId": account_id, "ids": ResultReference("q", query.name, "/ids"), "properties": list(properties)},
            "g",
        )
        return [query, get]

    while True:
        responses, limit = client.call_shrinking_to_fit(page, limit, using)
        ids = responses["q"]["ids"]
        yield from responses["g"]["list"]
        if len(ids) < (responses["q"].get("limit") or limit):
            return
        position += len(ids)
