"""What the destination holds of a stream in one account, as far as deleting its rows later needs: the ledger.

A stream names its kind; the base (`base.JmapStream`) keeps one per account, saves it in the account's state
("memo") with every checkpoint, and applies it after ANY full read (an import, an import again after a state the
server rejected, a type read whole on every sync): what the ledger held and the read did not bring is deleted.

- `Ledger`: nothing (emails, threads, raw messages: each deletion comes from `/changes`, which names the id).
- `HeldIds`: the ids themselves, while they fit the state's budget (mailboxes, identities, the types beyond mail:
  their /changes may be missing or refused, and a whole read finds what is gone only by its absence).
- `PartIdCounts`: the distinct part ids of the account's attachments, with how many emails used each: a destroyed
  email's rows are deleted under each of them (`attachments.py` says why not a map per email).

Each ledger's memo is a model of it (`HeldIdsMemo`, `PartIdCountsMemo`): the JSON every version wrote, member
for member and in this order, read by `from_json`, the one check of a saved memo, and written by `to_json`. A
malformed one raises `MalformedMemo` saying in one line which member is wrong, which the base words once as a
config error.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

Record = dict[str, Any]


class MalformedMemo(ValueError):
    """A saved memo this connector did not write; the message says in one line which member is wrong, and how."""


class Memo(BaseModel):
    """A ledger's saved memo. A member it does not know is ignored and not written back, as every version did."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_json(cls, memo: Any) -> Self:
        """A saved memo, or MalformedMemo: where in it the first wrong member is, then what it is not."""
        try:
            return cls.model_validate(memo)
        except ValidationError as error:
            first = error.errors(include_url=False, include_input=False)[0]
            where = "/".join(str(part) for part in first["loc"]) or "it"
            raise MalformedMemo(f"{where} {_PROBLEMS.get(first['type'], first['msg'].lower())}") from None


# What each kind of refusal means for a memo's members, in the message's words.
_PROBLEMS = {
    "model_type": "is not an object",
    "dict_type": "is not an object",
    "tuple_type": "is not a list",
    "string_type": "is not a string",
    "bool_type": "is not true or false",
    "int_type": "is not a count (a whole number from 1)",
    "greater_than": "is not a count (a whole number from 1)",
}


class Ledger:
    """No ledger: the destination's rows are not tracked (each deletion is named by `/changes`)."""

    # Whether a full read that replaces a state finds what was destroyed meanwhile.
    finds_deletions: ClassVar[bool] = False
    # Whether it must see a page's objects before their records go out (`learn_ahead`).
    learns_ahead: ClassVar[bool] = False

    def __init__(self, stream: str, account_id: str, logger: logging.Logger) -> None:
        self.stream, self.account_id, self.logger = stream, account_id, logger

    def restore(self, memo: Any) -> None:
        """Take back a saved memo (None: there was none)."""

    def start_full_read(self) -> None:
        """A full read starts (a first import, or one that replaces what the destination held): what the ledger
        held is unseen until the read brings it."""

    def memo(self) -> dict[str, Any] | None:
        """What to save in the account's state."""
        return None

    def brought(self, obj: Record) -> None:
        """The rows of `obj` go out."""

    def deleted(self, object_id: str) -> None:
        """The rows of `object_id` are deleted."""

    def learn_ahead(self, objects: Iterable[Record]) -> None:
        """Take in, before a page's records go out, what deleting them later will need."""

    def unseen(self) -> list[str]:
        """After a full read: the ids the destination held that it did not bring, gone from the server."""
        return []


# Room for the ids in an account's STATE: with the JMAP state and the selection, under 4 KB (issue 13: a state is
# re-emitted at every checkpoint, so it must not grow with the account). Cyrus's contact ids are UIDs of ~36
# characters: about 75 ids.
HELD_IDS_BUDGET_BYTES = 3000


class HeldIdsMemo(Memo):
    """`HeldIds`'s memo, as 0.2.0 and every version since wrote it: {"ids": [...]} sorted, with "unseen" (sorted)
    while a full read is under way, or {"overflow": true} alone (its ids, if any, are not taken)."""

    ids: tuple[StrictStr, ...] = ()
    unseen: tuple[StrictStr, ...] = ()
    overflow: StrictBool = False

    def to_json(self) -> dict[str, Any]:
        if self.overflow:
            return {"overflow": True}
        memo: dict[str, Any] = {"ids": list(self.ids)}
        if self.unseen:
            memo["unseen"] = list(self.unseen)
        return memo


class HeldIds(Ledger):
    """The ids the destination holds ({"ids": [...], "unseen": [...]} while a full read is under way), or
    {"overflow": true} for an account with more than the budget holds, until a full read finds them few enough
    again; a warning says what that costs. A state without a memo (written before the stream kept one) says
    nothing of what the destination holds: every id may be held, and the memo stays out until a full read has
    listed them (one written from what an incremental sync saw left an identity destroyed later in the
    destination: test_an_identity_destroyed_after_an_upgrade_is_emitted_as_deleted_by_identity_changes)."""

    finds_deletions = True
    learns_ahead = True

    def __init__(self, stream: str, account_id: str, logger: logging.Logger) -> None:
        super().__init__(stream, account_id, logger)
        self._known: set[str] = set()
        self._unseen: set[str] = set()
        self._remembered = False  # the ids the destination may hold are all known: from a memo, or a full read
        self._overflowing = False  # more ids than the state can hold: none are known

    def restore(self, memo: Any) -> None:
        if memo is None:
            return
        saved = HeldIdsMemo.from_json(memo)
        if saved.overflow:
            self._overflowing = True
        else:
            self._known, self._unseen = set(saved.ids), set(saved.unseen)
        self._remembered = True

    def start_full_read(self) -> None:
        """What the destination held, and what a killed full read had not seen yet (its memo's "unseen"): simulation
        seed ci-185 lost the deletion of an identity when a state written ahead of a page saved only the first."""
        self._unseen |= self._known
        self._known = set()
        self._overflowing = False  # a full read counts the account's objects again
        self._remembered = True

    def memo(self) -> dict[str, Any] | None:
        if not self._remembered:
            return None
        if self._overflowing or sum(len(object_id) + 3 for object_id in self._known | self._unseen) > \
                HELD_IDS_BUDGET_BYTES:
            if not self._overflowing:
                self._overflowing = True
                self.logger.warning(
                    "%s: account %s holds more objects than the state can list within %d bytes; deletions that "
                    "only a full read can find (no /changes, a state the server rejects, an object created and "
                    "destroyed meanwhile) are not detected for it until it holds fewer: a full refresh of the "
                    "stream removes them", self.stream, self.account_id, HELD_IDS_BUDGET_BYTES,
                )
            return HeldIdsMemo(overflow=True).to_json()
        return HeldIdsMemo(ids=tuple(sorted(self._known)), unseen=tuple(sorted(self._unseen))).to_json()

    def brought(self, obj: Record) -> None:
        self._known.add(obj["id"])
        self._unseen.discard(obj["id"])

    def deleted(self, object_id: str) -> None:
        self._known.discard(object_id)
        self._unseen.discard(object_id)

    def learn_ahead(self, objects: Iterable[Record]) -> None:
        """The page's ids, held from the state saved before its records: a killed run's rows after its last STATE
        may stay in the destination, and the deletion of one the memo did not hold was left out (simulation seed
        merged1-183: a mailbox of an import page emitted by a killed run, destroyed, its deletion skipped). Still
        unseen until a record brings them."""
        self._known.update(obj["id"] for obj in objects)

    def unseen(self) -> list[str]:
        gone = sorted(self._unseen)
        self._unseen = set()
        return gone


# The part ids kept in the state: at most this many, and at most this many bytes of JSON, so that the account's
# entry in the state stays under 4 KB with its state string and import resume point.
MAX_PART_IDS = 200
MAX_PART_IDS_BYTES = 3000


class PartIdCountsMemo(Memo):
    """`PartIdCounts`'s memo, as 0.2.0 and every version since wrote it: {"partIds": {partId: count}}, most common
    first, each count of emails 1 or more. The map of every email that versions before 0.2.0 wrote
    ({"parts": {emailId: [partId, ...]}}) is read, never written."""

    part_ids: dict[StrictStr, Annotated[StrictInt, Field(gt=0)]] = Field(default_factory=dict, alias="partIds")
    parts: dict[StrictStr, tuple[StrictStr, ...]] = Field(default_factory=dict)

    def counts(self) -> Counter[str]:
        """How many emails use each part id: the saved counts, and each email of the old map once per part id."""
        counts = Counter(self.part_ids)
        for part_ids in self.parts.values():
            counts.update(set(part_ids))
        return counts

    def to_json(self) -> dict[str, Any]:
        return {"partIds": dict(self.part_ids)}


class PartIdCounts(Ledger):
    """The distinct part ids of the account's attachments, with how many emails used each ({"partIds": {"2": 812}});
    the most common that fit the bounds, a warning once when some are dropped. The map per email of versions before
    0.2.0 is read too (`PartIdCountsMemo`)."""

    learns_ahead = True

    def __init__(self, stream: str, account_id: str, logger: logging.Logger) -> None:
        super().__init__(stream, account_id, logger)
        self._counts: Counter[str] = Counter()
        self._ahead: set[str] = set()  # part ids `learn_ahead` counted before their first record
        self._reported = False  # cut to the bound: said once a run

    def restore(self, memo: Any) -> None:
        if memo is None:
            return
        self._counts = PartIdCountsMemo.from_json(memo).counts()
        self._bounded()

    def start_full_read(self) -> None:
        self._counts, self._ahead = Counter(), set()

    def memo(self) -> dict[str, Any] | None:
        return PartIdCountsMemo(partIds=self._bounded()).to_json()

    def brought(self, obj: Record) -> None:
        for part_id in {str(part["partId"]) for part in parts_of(obj)}:
            if part_id in self._ahead:
                self._ahead.discard(part_id)  # counted once already, by `learn_ahead`
            else:
                self._counts[part_id] += 1

    def learn_ahead(self, objects: Iterable[Record]) -> None:
        """The page's part ids, in the state saved before its records: rows a killed run emitted after its last
        STATE may stay in the destination, and a destroyed email's rows are deleted by the part ids the state
        knows (simulation seed wa2-221: a killed first page's part 2, its email destroyed, no id to delete it by).
        A part id seen here for the first time counts one email, the first record with it."""
        for obj in objects:
            for part in parts_of(obj):
                if (part_id := str(part["partId"])) not in self._counts:
                    self._counts[part_id] = 1
                    self._ahead.add(part_id)

    def ranked(self) -> list[str]:
        """The part ids, most common first."""
        return sorted(self._counts, key=lambda part_id: (-self._counts[part_id], part_id))

    def _bounded(self) -> dict[str, int]:
        """The most common part ids that fit the bounds; the rest are dropped, with a warning."""
        kept: dict[str, int] = {}
        size = len('{"partIds": {}}')
        for part_id in self.ranked():
            size += len(json.dumps(part_id)) + len(str(self._counts[part_id])) + 4  # ": " and ", "
            if len(kept) == MAX_PART_IDS or size > MAX_PART_IDS_BYTES:
                break
            kept[part_id] = self._counts[part_id]
        if len(kept) < len(self._counts):
            if not self._reported:
                self._reported = True
                self.logger.warning(
                    "%s: account %s: attachments use %d distinct part ids, more than the state keeps; it keeps the "
                    "%d most common, so a destroyed email's attachment under another part id stays in the "
                    "destination (an email moved out of the selection is still deleted in full)",
                    self.stream, self.account_id, len(self._counts), len(kept),
                )
            self._counts = Counter(kept)
        return kept


def parts_of(obj: Record) -> list[dict[str, Any]]:
    """An email's attachment parts that have a part id."""
    return [part for part in obj.get("attachments") or [] if isinstance(part, dict) and part.get("partId")]
