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

from typing import Any

from airbyte_cdk.sources.streams.checkpoint import Cursor
from airbyte_cdk.sources.types import Record, StreamSlice, StreamState
from pydantic import BaseModel, ConfigDict, ValidationError

from ..jmap import InvalidResumePoint, ResumePoint


class AccountState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: str
    # Where an unfinished import goes on (jmap.ResumePoint, which checks it and writes its JSON); "import" in the JSON.
    import_progress: ResumePoint | None = None
    # The stream's ledger of what the destination holds (streams/ledger.py); "memo" in the JSON. An object here; its
    # members are checked once, by the ledger's memo model, when the read of the account takes it back.
    extra_state: dict[str, Any] | None = None
    # The email selection (start_date and mailbox filters) the state was built with: a sync with another
    # selection imports again, so that what it now covers arrives. None in states written before 0.2.
    selection: dict[str, Any] | None = None
    # The ids of the objects a page is about to emit that `state` does not know (created_ids of a jmap.ChangesPage
    # or WholePage): saved just before the page's records, gone from the state saved after them. A run killed in
    # between left them in the destination, maybe, and the next one checks each of them first (base.JmapStream._settle).
    pending: list[str] | None = None

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> AccountState:
        """An entry as `to_json` writes it (and every earlier version did); pydantic's ValidationError, or
        InvalidResumePoint for its "import", says what is wrong."""
        progress = document.get("import")
        return cls.model_validate(
            {"state": document.get("state"), "extra_state": document.get("memo"), "pending": document.get("pending"),
             "selection": document.get("selection"),
             "import_progress": None if progress is None else ResumePoint.from_json(progress, "import")}
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"state": self.state}
        if self.import_progress is not None:
            document["import"] = self.import_progress.to_json()
        if self.extra_state is not None:
            document["memo"] = self.extra_state
        if self.selection is not None:
            document["selection"] = self.selection
        if self.pending is not None:
            document["pending"] = self.pending
        return document


# The members of an account's entry (AccountState.to_json).
_MEMBERS = {"state", "import", "memo", "selection", "pending"}
# The JSON names of AccountState's fields, and what each kind of refusal means, for the one-line message.
_JSON_NAMES = {"extra_state": "memo"}
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
        """An account's entry, or the one line that says what is wrong with it: every check of a saved entry."""
        if not isinstance(document, dict):
            raise InvalidStreamState(f"the entry for account {account_id!r} is not an object")
        problem = f"{unknown[0]} is not a member of an entry" if (unknown := sorted(set(document) - _MEMBERS)) else None
        if problem is None:
            try:
                return AccountState.from_json(document)
            except ValidationError as error:
                problem = _problem(error)
            except InvalidResumePoint as error:
                problem = str(error)
        raise InvalidStreamState(f"the entry for account {account_id!r} is malformed: {problem}")
