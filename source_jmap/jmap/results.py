"""The results of `/query`, `/get` and `/changes` (RFC 8620 section 5), checked before they are used.

A server's answer is input like any other: a member that is missing or of the wrong type ends the
sync with one line naming the method and the member, never with a KeyError deep in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import JmapServerError
from .responses import ObjectList


def _member(method: str, result: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
            required: bool = True) -> Any:
    value = result.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        what = "missing" if name not in result else f"a {type(value).__name__}"
        raise JmapServerError(f"The JMAP server answered {method} with `{name}` {what}, which RFC 8620 does not allow")
    return value


def _ids(method: str, result: Mapping[str, Any], name: str) -> list[str]:
    ids = _member(method, result, name, list)
    if not all(isinstance(object_id, str) for object_id in ids):
        raise JmapServerError(f"The JMAP server answered {method} with `{name}` that holds an id that is not a string")
    return list(ids)


@dataclass(frozen=True)
class QueryResult:
    ids: list[str]
    position: int | None
    total: int | None
    limit: int | None

    @classmethod
    def of(cls, method: str, result: Mapping[str, Any]) -> QueryResult:
        return cls(_ids(method, result, "ids"), _member(method, result, "position", int, required=False),
                   _member(method, result, "total", int, required=False),
                   _member(method, result, "limit", int, required=False))


@dataclass(frozen=True)
class GetResult:
    objects: ObjectList
    not_found: list[str]
    state: str

    @classmethod
    def of(cls, method: str, result: Mapping[str, Any]) -> GetResult:
        objects = _member(method, result, "list", ObjectList)
        not_found = _ids(method, result, "notFound") if result.get("notFound") is not None else []
        return cls(objects, not_found, _member(method, result, "state", str))


@dataclass(frozen=True)
class ChangesResult:
    new_state: str
    has_more_changes: bool
    created: list[str]
    updated: list[str]
    destroyed: list[str]

    @classmethod
    def of(cls, method: str, result: Mapping[str, Any]) -> ChangesResult:
        return cls(_member(method, result, "newState", str), _member(method, result, "hasMoreChanges", bool),
                   _ids(method, result, "created"), _ids(method, result, "updated"), _ids(method, result, "destroyed"))

    @property
    def count(self) -> int:
        return len(self.created) + len(self.updated) + len(self.destroyed)
