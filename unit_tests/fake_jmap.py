"""A small in-memory JMAP server behind requests-mock, for protocol cases that need exact control.

It implements just enough of RFC 8620/8621 to drive the connector: session, back-references,
Foo/get, Foo/query (position, anchor, limit, `after`, sort by receivedAt), Foo/changes with
maxChanges, and a change log. It also counts requests so tests can assert batching.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests_mock

ORIGIN = "https://jmap.test"
SESSION_URL = f"{ORIGIN}/jmap/session"
API_URL = f"{ORIGIN}/jmap/api/"
ACCOUNT = "acc1"


def session_document(max_objects_in_get: int = 3, state: str = "s0", **overrides: Any) -> dict[str, Any]:
    document = {
        "capabilities": {
            "urn:ietf:params:jmap:core": {
                "maxSizeRequest": 10_000_000, "maxConcurrentRequests": 4,
                "maxCallsInRequest": 16, "maxObjectsInGet": max_objects_in_get,
            },
            "urn:ietf:params:jmap:mail": {},
        },
        "accounts": {ACCOUNT: {"name": "alice@jmap.test", "isPersonal": True, "isReadOnly": False,
                               "accountCapabilities": {"urn:ietf:params:jmap:mail": {"emailsListSortOptions": []}}}},
        "primaryAccounts": {"urn:ietf:params:jmap:mail": ACCOUNT},
        "username": "alice@jmap.test",
        "apiUrl": "/jmap/api/",
        "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
        "state": state,
    }
    document.update(overrides)
    return document


@dataclass
class TypeStore:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)  # (kind, id) per state step

    @property
    def state(self) -> str:
        return str(len(self.log))


@dataclass
class FakeJmap:
    mocker: requests_mock.Mocker
    max_objects_in_get: int = 3
    stores: dict[str, TypeStore] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Hook to answer a method call differently: (name, arguments) -> response or None.
    override: Callable[[str, dict[str, Any]], list[Any] | None] | None = None
    purged_before: int = 0
    # Capabilities the account offers beside mail (contacts, calendars...), with their objects.
    account_capabilities: dict[str, Any] = field(default_factory=dict)
    # RFC 8621 section 4.4.1 reads "after" as strictly after; Cyrus matches receivedAt equal to it too.
    strict_after: bool = False

    def __post_init__(self) -> None:
        self.mocker.get(SESSION_URL, json=lambda request, context: self._session())
        self.mocker.post(API_URL, json=self._api)

    def _session(self) -> dict[str, Any]:
        document = session_document(self.max_objects_in_get)
        document["accounts"][ACCOUNT]["accountCapabilities"].update(self.account_capabilities)
        return document

    def store(self, jmap_type: str) -> TypeStore:
        return self.stores.setdefault(jmap_type, TypeStore())

    def create(self, jmap_type: str, obj: dict[str, Any]) -> None:
        store = self.store(jmap_type)
        store.objects[obj["id"]] = obj
        store.log.append(("created", obj["id"]))

    def update(self, jmap_type: str, object_id: str, **changes: Any) -> None:
        store = self.store(jmap_type)
        store.objects[object_id].update(changes)
        store.log.append(("updated", object_id))

    def destroy(self, jmap_type: str, object_id: str) -> None:
        store = self.store(jmap_type)
        del store.objects[object_id]
        store.log.append(("destroyed", object_id))

    def method_calls(self) -> list[list[str]]:
        """The method names of every request, in order."""
        return [[call[0] for call in body["methodCalls"]] for body in self.requests]

    def sent(self, method: str, argument: str) -> list[Any]:
        """The value of `argument` in every call of `method`, in order."""
        return [arguments[argument] for arguments in self.sent_calls(method)]

    def answer_short_query_pages(self, most: int) -> None:
        """Answer Email/query with at most `most` ids, whatever its limit: a server may (RFC 8620 section 5.5)."""
        def short(name: str, arguments: dict[str, Any]) -> list[Any] | None:
            if name != "Email/query":
                return None
            [_, response] = self._dispatch(name, arguments)
            return [name, {**response, "ids": response["ids"][:most]}]

        self.override = short

    def sent_calls(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call of `method`, in order."""
        return [arguments for body in self.requests for name, arguments, _ in body["methodCalls"] if name == method]

    def _api(self, request: Any, context: Any) -> dict[str, Any]:
        body = json.loads(request.body)
        self.requests.append(body)
        results: dict[str, list[Any]] = {}
        responses = []
        for name, arguments, call_id in body["methodCalls"]:
            try:
                arguments = resolve_references(arguments, results)
            except LookupError:
                response = ["error", {"type": "invalidResultReference"}]
            else:
                overridden = self.override(name, arguments) if self.override else None
                response = overridden or self._dispatch(name, arguments)
            results[call_id] = response
            responses.append([response[0], response[1], call_id])
        return {"methodResponses": responses, "sessionState": "s0"}

    def _dispatch(self, name: str, arguments: dict[str, Any]) -> list[Any]:
        jmap_type, method = name.split("/")
        store = self.store(jmap_type)
        if method == "get":
            return self._get(name, store, arguments)
        if method == "query":
            return self._query(name, store, arguments)
        if method == "changes":
            return self._changes(name, store, arguments)
        return ["error", {"type": "unknownMethod"}]

    def _get(self, name: str, store: TypeStore, arguments: dict[str, Any]) -> list[Any]:
        ids = arguments["ids"] if arguments["ids"] is not None else list(store.objects)
        if len(ids) > self.max_objects_in_get:
            return ["error", {"type": "requestTooLarge"}]
        found = [dict(store.objects[i]) for i in ids if i in store.objects]
        return [name, {"accountId": ACCOUNT, "state": store.state, "list": found[::-1],
                       "notFound": [i for i in ids if i not in store.objects]}]

    def _query(self, name: str, store: TypeStore, arguments: dict[str, Any]) -> list[Any]:
        candidates = [obj for obj in store.objects.values()
                      if _matches(obj, arguments.get("filter"), self.strict_after)]
        if arguments.get("sort"):
            candidates.sort(key=lambda obj: (obj["receivedAt"], obj["id"]))
        if arguments.get("collapseThreads"):
            first_of_thread: dict[str, dict[str, Any]] = {}
            for obj in candidates:
                first_of_thread.setdefault(obj["threadId"], obj)
            candidates = list(first_of_thread.values())
        ids = [obj["id"] for obj in candidates]
        start = arguments.get("position", 0)
        if "anchor" in arguments:
            if arguments["anchor"] not in ids:
                return ["error", {"type": "anchorNotFound"}]
            start = ids.index(arguments["anchor"]) + arguments.get("anchorOffset", 0)
        limit = arguments.get("limit") or len(ids)
        response = {"accountId": ACCOUNT, "ids": ids[start:start + limit], "position": start,
                    "queryState": store.state, "canCalculateChanges": False}
        if arguments.get("calculateTotal"):
            response["total"] = len(ids)
        return [name, response]

    def _changes(self, name: str, store: TypeStore, arguments: dict[str, Any]) -> list[Any]:
        since = arguments["sinceState"]
        if not isinstance(since, str) or not since.isdigit() or int(since) > len(store.log):
            return ["error", {"type": "invalidArguments", "arguments": ["sinceState"]}]
        if int(since) < self.purged_before:
            return ["error", {"type": "cannotCalculateChanges"}]
        end = min(len(store.log), int(since) + (arguments.get("maxChanges") or len(store.log)))
        kinds: dict[str, str] = {}
        for kind, object_id in store.log[int(since):end]:
            previous = kinds.get(object_id)
            if kind == "destroyed" and previous == "created":
                del kinds[object_id]
            else:
                kinds[object_id] = "created" if previous == "created" else kind
        return [name, {
            "accountId": ACCOUNT, "oldState": since, "newState": str(end), "hasMoreChanges": end < len(store.log),
            "created": [i for i, k in kinds.items() if k == "created"],
            "updated": [i for i, k in kinds.items() if k == "updated"],
            "destroyed": [i for i, k in kinds.items() if k == "destroyed"],
        }]


def resolve_references(arguments: dict[str, Any], results: dict[str, list[Any]]) -> dict[str, Any]:
    """A call's arguments with each `#name` back-reference (RFC 8620 section 3.7) replaced by its value;
    LookupError for a reference to a call that failed."""
    resolved = {}
    for key, value in arguments.items():
        if key.startswith("#"):
            name, result = results[value["resultOf"]]
            if name == "error":
                raise LookupError(value["resultOf"])
            resolved[key[1:]] = _evaluate(result, value["path"].strip("/").split("/"))
        else:
            resolved[key] = value
    return resolved


def _evaluate(value: Any, path: list[str]) -> Any:
    """A JSON pointer with RFC 8620's `*` over arrays, an array met under it flattened into the result."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == "*":
        out: list[Any] = []
        for item in value:
            got = _evaluate(item, rest)
            out.extend(got if isinstance(got, list) else [got])
        return out
    return _evaluate(value[head], rest)


def _matches(obj: dict[str, Any], condition: dict[str, Any] | None, strict_after: bool = False) -> bool:
    if not condition:
        return True
    if "operator" in condition:
        results = [_matches(obj, inner, strict_after) for inner in condition["conditions"]]
        return {"AND": all, "OR": any, "NOT": lambda r: not any(r)}[condition["operator"]](results)
    mailboxes = set(obj.get("mailboxIds") or {})
    return (
        ("after" not in condition or _moment(obj["receivedAt"]) > _moment(condition["after"])
         or (not strict_after and _moment(obj["receivedAt"]) == _moment(condition["after"])))
        and ("inMailbox" not in condition or condition["inMailbox"] in mailboxes)
        and ("inMailboxOtherThan" not in condition or bool(mailboxes - set(condition["inMailboxOtherThan"])))
        and ("kind" not in condition or obj.get("kind", "individual") == condition["kind"])  # RFC 9610 ContactCard
    )


def _moment(utc_date: str) -> datetime:
    return datetime.fromisoformat(utc_date)


def email(number: int, received_at: str | None = None) -> dict[str, Any]:
    return {"id": f"M{number:04d}", "threadId": f"T{number:04d}", "subject": f"message {number}",
            "receivedAt": received_at or f"2024-01-{1 + number % 28:02d}T10:{number % 60:02d}:00Z",
            "keywords": {}, "mailboxIds": {"mb-inbox": True}}
