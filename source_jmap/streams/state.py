"""The stream state: one JMAP state string per account, plus the resume point of an unfinished import.

    {"accounts": {"<accountId>": {"state": "<JMAP state>"}}}                        # import done
    {"accounts": {"<accountId>": {"state": "<JMAP state>", "import": {...}}}}       # import under way
    {"accounts": {"<accountId>": {"state": "<JMAP state>", "memo": {...}}}}         # a stream's extra state
    {"accounts": {"<accountId>": {"state": "<JMAP state>", "selection": {...}}}}    # the emails it covers
    {"accounts": {"<accountId>": {"state": "<JMAP state>", "pending": [...]}}}      # ids written ahead of a page

During an import, "state" is the state captured BEFORE the first page, so that the
changes replayed after the import cover everything that happened while it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from airbyte_cdk.sources.streams.checkpoint import Cursor
from airbyte_cdk.sources.types import Record, StreamSlice, StreamState
from pydantic import BaseModel, ConfigDict, ValidationError


class AccountState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str
    import_progress: dict[str, Any] | None = None
    # What a stream keeps between syncs beyond the state string (see AttachmentStream); "memo" in the JSON.
    extra_state: dict[str, Any] | None = None
    # The email selection (start_date and mailbox filters) the state was built with: a sync with another
    # selection imports again, so that what it now covers arrives. None in states written before 0.2.
    selection: dict[str, Any] | None = None
    # The ids of the objects a page is about to emit that `state` does not know (jmap.Page.created_ids): saved
    # just before the page's records, gone from the state saved after them. A run killed in between left them
    # in the destination, maybe, and the next one checks each of them first (base.JmapStream._settle).
    pending: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"state": self.state}
        if self.import_progress is not None:
            document["import"] = self.import_progress
        if self.extra_state is not None:
            document["memo"] = self.extra_state
        if self.selection is not None:
            document["selection"] = self.selection
        if self.pending is not None:
            document["pending"] = self.pending
        return document


# The largest position a query takes: an UnsignedInt of RFC 8620 section 1.3.
MAX_POSITION = 2**53 - 1


def _is_anchor(value: Any) -> bool:
    return isinstance(value, str)


def _is_position(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_POSITION


def _is_moment_or_null(value: Any) -> bool:
    """A date-time with its offset, as a server's receivedAt (RFC 8620 UTCDate), or null: the receivedAt of an
    email the server left without one. It is parsed when the import goes on by time (selection.query_filter), where
    "garbage" ended in "Something went wrong in the connector" and a date-time without an offset cannot be
    compared with start_date."""
    if value is None:
        return True
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


MOMENT = "a date-time with its offset, such as 2024-01-01T00:00:00Z"
# The members of a resume point (where an unfinished import goes on, jmap/calls.py), each checked before it
# reaches a query or a parser, and what each must be: an `anchor` of 17 went to the server as is. `receivedAt`
# is the sort value of the page's last email (selection.RECEIVED_AT; the only sort property of this connector's
# queries) and `after` the lower bound taken from it when the anchor is gone.
RESUME_POINT_MEMBERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "anchor": (_is_anchor, "a string"),
    "after": (_is_moment_or_null, MOMENT),
    "receivedAt": (_is_moment_or_null, MOMENT),
    "position": (_is_position, f"a whole number from 0 to {MAX_POSITION}"),
}


def _resume_point_problem(point: dict[str, Any]) -> str | None:
    for name, (valid, words) in RESUME_POINT_MEMBERS.items():
        if name in point and not valid(point[name]):
            return f"import/{name} is not {words}"
    return None


# The JSON names of AccountState's fields, and what each kind of refusal means, for the one-line message.
_JSON_NAMES = {"import_progress": "import", "extra_state": "memo"}
_PROBLEMS = {
    "dict_type": "is not an object",
    "model_type": "is not an object",
    "string_type": "is not a string",
    "list_type": "is not a list",
}


def _problem(error: ValidationError) -> str:
    """'memo is not an object': where in the entry, then what is wrong."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = "/".join(_JSON_NAMES.get(str(part), str(part)) for part in first["loc"])
    return f"{where} {_PROBLEMS.get(first['type'], first['msg'].lower())}"


class InvalidStreamState(ValueError):
    """A state passed to `read` that this connector did not write."""


class AccountStates(Cursor):
    """Holds the stream state and replaces it (never mutates it) on every step.

    The CDK compares the state after each record with the last one it emitted and
    emits a STATE message only when it changed: replacing the mapping keeps that
    comparison honest and lets each page be checkpointed exactly once.
    """

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}

    def set_initial_state(self, stream_state: StreamState) -> None:
        self._state = dict(stream_state or {})
        self.validate()

    def validate(self) -> None:
        accounts = self._state.get("accounts", {})
        if set(self._state) - {"accounts"} or not isinstance(accounts, dict):
            raise InvalidStreamState("it is not a JMAP connector state")
        for account_id, document in accounts.items():
            self._parse(account_id, document)

    def account_ids(self) -> list[str]:
        return list(self._state.get("accounts", {}))

    def get(self, account_id: str) -> AccountState | None:
        document = self._state.get("accounts", {}).get(account_id)
        return None if document is None else self._parse(account_id, document)

    def put(self, account_id: str, account_state: AccountState) -> None:
        accounts = {**self._state.get("accounts", {}), account_id: account_state.to_json()}
        self._state = {"accounts": accounts}

    def get_stream_state(self) -> dict[str, Any]:
        return self._state

    def select_state(self, stream_slice: StreamSlice | None = None) -> StreamState | None:
        return self._state

    def close_slice(self, stream_slice: StreamSlice, *args: Any) -> None:
        """State moves forward page by page inside the slice; nothing is left to do at its end."""

    def should_be_synced(self, record: Record) -> bool:
        return True

    @staticmethod
    def _parse(account_id: str, document: Any) -> AccountState:
        if not isinstance(document, dict):
            raise InvalidStreamState(f"the entry for account {account_id!r} is not an object")
        if set(document) - {"state", "import", "memo", "selection", "pending"}:
            raise InvalidStreamState(f"the entry for account {account_id!r} is malformed")
        try:
            account_state = AccountState.model_validate(
                {"state": document.get("state"), "import_progress": document.get("import"),
                 "extra_state": document.get("memo"), "selection": document.get("selection"),
                 "pending": document.get("pending")}
            )
        except ValidationError as error:
            raise InvalidStreamState(f"the entry for account {account_id!r} is malformed: {_problem(error)}") from None
        problem = _resume_point_problem(account_state.import_progress or {})
        if problem is not None:
            raise InvalidStreamState(f"the entry for account {account_id!r} is malformed: {problem}")
        return account_state
