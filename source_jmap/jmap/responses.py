"""The answer to a JMAP API request, decoded no further than it is read.

A page of 4096 emails is a JSON document of 20-30 MB, and about twice that again as Python
objects. So the answer is checked whole when it arrives (JSON cut short or mangled on the way is
refused before any of it is used, and the request sent again), a call's arguments are decoded when
that call is looked up, and the objects of a `/get` list one at a time, as they are iterated: a
page is held as its bytes, and each object lives only while the stream turns it into a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import msgspec

from .errors import JmapMethodError, JmapServerError
from .retry import TRANSPORT_FAILURES, TransportFailure, raised_as
from .transport import HttpResponse
from .wire import MethodCall

JsonObject = dict[str, Any]
Entry = tuple[str, dict[str, msgspec.Raw], str]


class _Envelope(msgspec.Struct):
    methodResponses: list[msgspec.Raw]
    sessionState: Any = None


class _Identified(msgspec.Struct):
    id: str


# Decoding into msgspec.Raw checks the JSON syntax of the skipped value and keeps it as a slice
# of the answer's bytes, without building any Python object for it.
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_ENTRY = msgspec.json.Decoder(Entry)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_IDENTIFIED = msgspec.json.Decoder(_Identified)
_ANY = msgspec.json.Decoder()


class NotJsonError(ValueError):
    """The bytes are not JSON: cut short or mangled."""


class NotMethodResponsesError(ValueError):
    """JSON, but not a JMAP Response object; the message says which part is wrong."""


def _decode(raw: msgspec.Raw) -> Any:
    try:
        return _ANY.decode(raw)
    except msgspec.DecodeError as error:  # the syntax was checked on arrival: only bad UTF-8 gets here
        raise JmapServerError(f"The JMAP server sent a value that is not valid JSON text ({error})") from None


def json_or_none(response: HttpResponse) -> Any:
    try:
        return _ANY.decode(response.content)
    except msgspec.DecodeError:
        return None


def _claims_json(response: HttpResponse) -> bool:
    return response.media_type == "application/json" or response.media_type.endswith("+json")


def describe_response(response: HttpResponse) -> str:
    """What came back instead of what was expected, in words: 'HTTP 404', 'an HTML page'."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    if "html" in response.media_type or response.content.lstrip()[:1] == b"<":
        return "an HTML page"
    if json_or_none(response) is None:
        return "a response that is not valid JSON"
    return "JSON of another kind"


def refuse_broken_json(response: HttpResponse) -> HttpResponse:
    """A 200 that says it is JSON but does not parse was cut or mangled on the way: damaged, as the table says."""
    if response.status_code == 200 and _claims_json(response) and json_or_none(response) is None:
        raise raised_as(TRANSPORT_FAILURES[TransportFailure.DAMAGED], JmapServerError(
            f"{response.url} answered with JSON that does not parse ({len(response.content)} bytes; "
            "cut off or damaged on the way)"
        ))
    return response


def decode_response(body: bytes) -> tuple[list[Entry], Any]:
    """The method responses and the sessionState of a JMAP Response object (RFC 8620 section 3.4)."""
    try:
        envelope = _ENVELOPE.decode(body)
    except msgspec.ValidationError:
        raise NotMethodResponsesError("JSON of another kind") from None
    except msgspec.DecodeError:
        raise NotJsonError("a response that is not valid JSON") from None
    try:
        return [_ENTRY.decode(entry) for entry in envelope.methodResponses], envelope.sessionState
    except msgspec.ValidationError:
        raise NotMethodResponsesError("malformed methodResponses") from None


class ObjectList(Sequence[JsonObject]):
    """The `list` of a `/get` response, each object decoded when it is reached (a new dict each time)."""

    def __init__(self, raw: msgspec.Raw) -> None:
        try:
            self._items = _RAW_LIST.decode(raw)
        except msgspec.ValidationError:
            raise JmapServerError("The JMAP server sent a /get response whose list is not an array") from None
        self._by_id: dict[str, msgspec.Raw] | None = None

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> JsonObject: ...

    @overload
    def __getitem__(self, index: slice) -> list[JsonObject]: ...

    def __getitem__(self, index: int | slice) -> JsonObject | list[JsonObject]:
        if isinstance(index, slice):
            return [_decode(item) for item in self._items[index]]
        obj: JsonObject = _decode(self._items[index])
        return obj

    def __iter__(self) -> Iterator[JsonObject]:
        return (_decode(item) for item in self._items)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same objects, as the list it stands for would be."""
        return isinstance(other, Sequence) and not isinstance(other, str | bytes) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking and compared by content, like a list

    def in_order(self, ids: Iterable[str]) -> Iterator[JsonObject]:
        """The objects of `ids` that the list holds, in the order of `ids` (a server may answer in any order)."""
        by_id = self.by_id()
        return (_decode(by_id[object_id]) for object_id in ids if object_id in by_id)

    def get(self, object_id: str) -> JsonObject | None:
        """The object of `object_id`, if the list holds it."""
        raw = self.by_id().get(object_id)
        return None if raw is None else _decode(raw)

    def last_of(self, ids: Sequence[str]) -> JsonObject | None:
        """The object of the last id in `ids` that the list holds."""
        by_id = self.by_id()
        return next((_decode(by_id[object_id]) for object_id in reversed(ids) if object_id in by_id), None)

    def by_id(self) -> dict[str, msgspec.Raw]:
        """Each object's raw JSON by its id, built once; an object without a string id is refused here."""
        if self._by_id is None:
            try:
                self._by_id = {_IDENTIFIED.decode(item).id: item for item in self._items}
            except msgspec.ValidationError:
                raise JmapServerError("The JMAP server sent a /get object without a string id") from None
        return self._by_id


class MethodResponses:
    """The responses of one request, looked up by call id; `size` is the answer's length in bytes."""

    def __init__(
        self, calls: Sequence[MethodCall], entries: list[Entry], session_state: Any = None, size: int = 0
    ) -> None:
        self.session_state = session_state
        self.size = size
        self._method_names = {call.call_id: call.name for call in calls}
        self._by_id: dict[str, tuple[str, dict[str, msgspec.Raw]]] = {}
        for name, arguments, call_id in entries:
            self._by_id.setdefault(call_id, (name, arguments))
        self._decoded: dict[str, JsonObject] = {}

    def __getitem__(self, call: MethodCall | str) -> JsonObject:
        """The arguments of the response to a call (or to a call id); a method error is raised as JmapMethodError.

        A `list` argument (the objects of a `/get`) is an ObjectList, decoded as it is iterated.
        """
        call_id = call.call_id if isinstance(call, MethodCall) else call
        method = self._method_names.get(call_id, call_id)
        if call_id not in self._by_id:
            raise JmapServerError(f"The JMAP server sent no response for {method} (call '{call_id}')")
        name, arguments = self._by_id[call_id]
        if name == "error":
            raise _method_error(method, _decode_arguments(arguments))
        if call_id not in self._decoded:
            self._decoded[call_id] = _decode_arguments(arguments)
        return self._decoded[call_id]

    def method_errors(self) -> list[JmapMethodError]:
        """The method-level errors of this request, in call order."""
        return [
            _method_error(self._method_names.get(call_id, call_id), _decode_arguments(arguments))
            for call_id, (name, arguments) in self._by_id.items()
            if name == "error"
        ]


def _decode_arguments(arguments: dict[str, msgspec.Raw]) -> JsonObject:
    return {key: ObjectList(raw) if key == "list" else _decode(raw) for key, raw in arguments.items()}


def _method_error(method: str, arguments: JsonObject) -> JmapMethodError:
    return JmapMethodError(method, arguments.get("type", "unknown"), arguments.get("description"),
                           arguments.get("arguments"))
