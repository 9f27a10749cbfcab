"""The ledgers' memos, their contract with the saved state: read as every version wrote them, written back the same.

`HeldIds` (mailboxes, identities, the types beyond mail) has written {"ids": [...]} with "unseen" during a full read,
or {"overflow": true}, since 0.2.0 (c0834eb); `PartIdCounts` (attachments) {"partIds": {partId: count}} most common
first since 0.2.0, and versions before it the map {"parts": {emailId: [partId, ...]}}, which is still read. Whatever
the state holds is checked once, by the memo's model (`HeldIdsMemo`, `PartIdCountsMemo`), which says in one line
which member is wrong.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from source_jmap.streams.ledger import HeldIds, HeldIdsMemo, Ledger, MalformedMemo, PartIdCounts, PartIdCountsMemo

from .fake_jmap import ACCOUNT, FakeJmap
from .helpers import final_state, read_stream
from .test_attachment_state import mailboxes, with_attachments

LOGGER = logging.getLogger("test_ledger_memos")

HELD_IDS_WRITTEN = {
    "0.2.0 and after: the ids held, sorted": {"ids": ["6nzklinl2rwvq53mz4xtvk2m", "78gak7fxm9maa2ag53zphx1f"]},
    "an identity, its id an address": {"ids": ["demo@example.com"]},
    "none held": {"ids": []},
    "a full read under way, killed": {"ids": ["c1"], "unseen": ["c3", "gone"]},
    "a full read under way, none brought yet": {"ids": [], "unseen": ["c1", "c3"]},
    "more than the budget": {"overflow": True},
}
PART_ID_COUNTS_WRITTEN = {
    "0.2.0 and after: most common first": {"partIds": {"2": 7, "1": 1, "3": 1}},
    "a tie, in order of part id": {"partIds": {"1.2": 1, "2": 1}},
    "no attachment yet": {"partIds": {}},
}
WRITTEN: list[tuple[type[Ledger], dict[str, Any]]] = [
    *((HeldIds, memo) for memo in HELD_IDS_WRITTEN.values()),
    *((PartIdCounts, memo) for memo in PART_ID_COUNTS_WRITTEN.values()),
]
WRITTEN_IDS = [*HELD_IDS_WRITTEN, *PART_ID_COUNTS_WRITTEN]


def restored(ledger: type[Ledger], memo: Any) -> Ledger:
    taken = ledger("stream", "acc1", LOGGER)
    taken.restore(json.loads(json.dumps(memo)))
    return taken


@pytest.mark.parametrize(("ledger", "memo"), WRITTEN, ids=WRITTEN_IDS)
def test_a_saved_memo_is_written_back_byte_for_byte(ledger: type[Ledger], memo: dict[str, Any]) -> None:
    assert json.dumps(restored(ledger, memo).memo()) == json.dumps(memo)


@pytest.mark.parametrize(("ledger", "memo"), WRITTEN, ids=WRITTEN_IDS)
def test_a_saved_memo_is_its_model_byte_for_byte(ledger: type[Ledger], memo: dict[str, Any]) -> None:
    model = HeldIdsMemo if ledger is HeldIds else PartIdCountsMemo
    assert json.dumps(model.from_json(memo).to_json()) == json.dumps(memo)


def test_the_map_per_email_of_versions_before_0_2_0_is_read_as_counts_of_emails() -> None:
    """Each email counts once per part id, however often it lists it; counts saved beside the map add up."""
    old = {"parts": {"M1": ["2", "3"], "M2": ["2", "2"], "M3": ["1.2"]}}
    assert restored(PartIdCounts, old).memo() == {"partIds": {"2": 2, "1.2": 1, "3": 1}}
    both = {"partIds": {"3": 4}, "parts": {"M1": ["2", "3"]}}
    assert json.dumps(restored(PartIdCounts, both).memo()) == json.dumps({"partIds": {"3": 5, "2": 1}})


def test_an_overflow_takes_no_ids_and_stays_until_a_full_read() -> None:
    ledger = restored(HeldIds, {"overflow": True, "ids": ["c1"]})
    ledger.brought({"id": "c2"})
    assert ledger.memo() == {"overflow": True}
    ledger.start_full_read()
    ledger.brought({"id": "c2"})
    assert ledger.memo() == {"ids": ["c2"]} and ledger.unseen() == []  # "c1" was never taken


def test_a_member_no_version_wrote_is_ignored_and_not_written_back() -> None:
    """As the checks written by hand before the models did: a later version's member does not stop a read."""
    assert restored(HeldIds, {"ids": ["c1"], "later": 1}).memo() == {"ids": ["c1"]}
    assert restored(PartIdCounts, {"partIds": {"2": 1}, "ids": ["c1"]}).memo() == {"partIds": {"2": 1}}


HELD_IDS_MALFORMED = {
    "a list instead of an object": (["c1"], "it is not an object"),
    "ids of one id": ({"ids": "c1"}, "ids is not a list"),
    "ids as an object": ({"ids": {"c1": True}}, "ids is not a list"),
    "an id that is no string": ({"ids": ["c1", 7]}, "ids/1 is not a string"),
    "unseen of null": ({"ids": [], "unseen": None}, "unseen is not a list"),
    "an unseen id that is no string": ({"unseen": [True]}, "unseen/0 is not a string"),
    "an overflow of yes": ({"overflow": "yes"}, "overflow is not true or false"),
    "an overflow of 1": ({"overflow": 1}, "overflow is not true or false"),
    "an overflow with ids of one id": ({"overflow": True, "ids": "c1"}, "ids is not a list"),
}
PART_ID_COUNTS_MALFORMED = {
    "a list instead of an object": (["2"], "it is not an object"),
    "partIds as a list": ({"partIds": ["2"]}, "partIds is not an object"),
    "partIds of null": ({"partIds": None}, "partIds is not an object"),
    "a count of true": ({"partIds": {"2": True}}, "partIds/2 is not a count (a whole number from 1)"),
    "a count of 0": ({"partIds": {"2": 0}}, "partIds/2 is not a count (a whole number from 1)"),
    "a negative count": ({"partIds": {"2": -3}}, "partIds/2 is not a count (a whole number from 1)"),
    "a count of 1.0": ({"partIds": {"2": 1.0}}, "partIds/2 is not a count (a whole number from 1)"),
    "a count that is a string": ({"partIds": {"2": "5"}}, "partIds/2 is not a count (a whole number from 1)"),
    "parts as a list": ({"parts": ["2"]}, "parts is not an object"),
    "an email's part ids as a string": ({"parts": {"M1": "2"}}, "parts/M1 is not a list"),
    "a part id that is no string": ({"parts": {"M1": ["2", 3]}}, "parts/M1/1 is not a string"),
}
MALFORMED: list[tuple[type[Ledger], Any, str]] = [
    *((HeldIds, memo, problem) for memo, problem in HELD_IDS_MALFORMED.values()),
    *((PartIdCounts, memo, problem) for memo, problem in PART_ID_COUNTS_MALFORMED.values()),
]
MALFORMED_IDS = [*(f"held ids, {name}" for name in HELD_IDS_MALFORMED),
                 *(f"part id counts, {name}" for name in PART_ID_COUNTS_MALFORMED)]


@pytest.mark.parametrize(("ledger", "memo", "problem"), MALFORMED, ids=MALFORMED_IDS)
def test_a_malformed_memo_is_refused_in_one_line_naming_the_member(
    ledger: type[Ledger], memo: Any, problem: str
) -> None:
    with pytest.raises(MalformedMemo) as refused:
        restored(ledger, memo)
    assert str(refused.value) == problem


def test_a_malformed_memo_is_one_config_error_naming_the_stream_account_and_member(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    mailboxes(fake)
    state = {"accounts": {ACCOUNT: {"state": fake.store("Mailbox").state, "memo": {"ids": ["mb-inbox", 7]}}}}
    output = read_stream(config, "mailboxes", state=state, expecting_exception=True)
    assert [message.trace.error.message for message in output.errors] == [
        f"The saved state of stream 'mailboxes' has a malformed memo for account {ACCOUNT!r} (ids/1 is not a "
        "string); reset the stream to import it again"]


def test_a_0_2_0_state_of_each_ledger_is_read_and_written_back_the_same(fake: FakeJmap, config: dict[str, Any]) -> None:
    """A sync with nothing changed since: the account's entry as 0.2.0 saved it comes back member for member."""
    mailboxes(fake)
    fake.create("Email", with_attachments(1, "2", "3"))
    held = {"accounts": {ACCOUNT: {"state": fake.store("Mailbox").state, "memo": {"ids": ["mb-inbox", "mb-trash"]}}}}
    assert json.dumps(final_state(read_stream(config, "mailboxes", state=held))) == json.dumps(held)
    counted = {"accounts": {ACCOUNT: {"state": fake.store("Email").state, "memo": {"partIds": {"3": 7, "2": 1}},
                                      "selection": {"start_date": None, "mailboxes": [], "exclude_mailboxes": []}}}}
    assert json.dumps(final_state(read_stream(config, "attachments", state=counted))) == json.dumps(counted)
