"""A JMAP request as it goes on the wire (RFC 8620 section 3.3): method calls and their back-references.

The server's limits are enforced here, before sending: a request the server would refuse is refused
with the same `limit` problem the server would answer, so the caller handles both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from .errors import JmapRequestError
from .session import CORE, CoreLimits

LIMIT_PROBLEM = "urn:ietf:params:jmap:error:limit"


@dataclass(frozen=True)
class ResultReference:
    """A value taken from the result of an earlier call in the same request (RFC 8620 section 3.7)."""

    result_of: str
    name: str
    path: str

    def to_json(self) -> dict[str, str]:
        return {"resultOf": self.result_of, "name": self.name, "path": self.path}


@dataclass(frozen=True)
class MethodCall:
    """One Invocation: a method name, its arguments and the call id its response carries back."""

    name: str
    arguments: dict[str, Any]
    call_id: str

    def to_json(self) -> list[Any]:
        arguments = {
            (f"#{key}" if isinstance(value, ResultReference) else key): (
                value.to_json() if isinstance(value, ResultReference) else value
            )
            for key, value in self.arguments.items()
        }
        return [self.name, arguments, self.call_id]


def encode_request(calls: Sequence[MethodCall], using: Sequence[str], limits: CoreLimits) -> bytes:
    """The request body, refused here with the server's own `limit` problem when the server would refuse it."""
    if len(calls) > limits.max_calls_in_request:
        raise limit_error(
            f"{len(calls)} method calls in one request, more than the server's maxCallsInRequest of "
            f"{limits.max_calls_in_request}", "maxCallsInRequest",
        )
    for call in calls:
        ids = call.arguments.get("ids")
        if call.name.endswith("/get") and isinstance(ids, list) and len(ids) > limits.max_objects_in_get:
            raise limit_error(
                f"{call.name} asks for {len(ids)} ids, more than the server's maxObjectsInGet of "
                f"{limits.max_objects_in_get}", "maxObjectsInGet",
            )
    body = msgspec.json.encode({"using": [CORE, *using], "methodCalls": [call.to_json() for call in calls]})
    if len(body) > limits.max_size_request:
        what = f"a single {calls[0].name} call" if len(calls) == 1 else f"a request of {len(calls)} method calls"
        split = " and cannot be split" if len(calls) == 1 else ""
        raise limit_error(
            f"{what} is {len(body)} bytes, more than the server's maxSizeRequest of "
            f"{limits.max_size_request} bytes{split}", "maxSizeRequest",
        )
    return body


def limit_error(what: str, limit: str) -> JmapRequestError:
    return JmapRequestError(f"Not sent: {what}", LIMIT_PROBLEM, limit)
