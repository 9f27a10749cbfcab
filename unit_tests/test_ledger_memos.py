"""The ledgers' memos, their contract with the saved state: read as every version wrote them, written back the same.

`HeldIds` has written {"ids": [...]} with "unseen" during a full read, or {"overflow": true}, since 0.2.0 (c0834eb:
the types beyond mail; mailboxes and identities by 0.4.0); `PartIdCounts` (attachments) {"partIds": {partId: count}},
most common first, since 0.2.0, and versions before it the map {"parts": {emailId: [partId, ...]}}, which is still
read. Whatever the state holds is checked once, by the memo's model (`HeldIdsMemo`, `PartIdCountsMemo`), which says
in one line which member is wrong.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from source_jmap.streams.ledger import HeldIds, HeldIdsMemo, Ledger, MalformedMemo, PartIdCounts, PartIdCountsMemo

from .fake_jmap import ACCOUNT, FakeJmap
from .helpers import final_state, read_stream
from .test_attachment_state import with_attachments

LOGGER = logging.getLogger("test_ledger_memos")

# The memos 0.2.0 (c0834eb), 0.4.0 (a9e8735) and main (7c23d95) wrote, each run on the same reads: 5 contacts in
# pages of 2, then a full read the server forced (cannotCalculateChanges) after c1 and c3 were destroyed; 120 contacts;
# attachments of 6 emails. Which versions wrote each, in brackets.
HELD_IDS_WRITTEN = {
    "the ids held, sorted (all)": {"ids": ["c0", "c1", "c2", "c3", "c4"]},
    "a full read under way (all)": {"ids": ["c0", "c2"], "unseen": ["c1", "c3", "c4"]},
    "a full read under way, none brought yet (0.4.0)": {"ids": [], "unseen": ["c0", "c1", "c2", "c3", "c4"]},
    "none held (0.4.0)": {"ids": []},
    "a full read under way, ids held ahead of their page (main)": {"ids": ["c0", "c2"],
                                                                   "unseen": ["c0", "c1", "c2", "c3", "c4"]},
    "more than the budget (all)": {"overflow": True},
    "an identity, its id an address (README)": {"ids": ["demo@example.com"]},
}
PART_ID_COUNTS_WRITTEN = {
    "most common first, a tie in order of part id (all)": {"partIds": {"3": 4, "1.2": 2, "2": 2, "4": 1}},
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


def with_contacts(fake: FakeJmap, *card_ids: str) -> None:
    fake.account_capabilities = {"urn:ietf:params:jmap:contacts": {}}
    for card_id in card_ids:
        fake.create("ContactCard", {"id": card_id, "addressBookIds": {"b1": True}, "@type": "Card", "version": "1.0",
                                    "kind": "individual", "name": {"full": "John Doe"}})


def test_a_malformed_memo_is_one_config_error_naming_the_stream_account_and_member(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    with_contacts(fake, "c1")
    state = {"accounts": {ACCOUNT: {"state": fake.store("ContactCard").state, "memo": {"ids": ["c1", 7]}}}}
    output = read_stream(config, "contacts", state=state, expecting_exception=True)
    assert [message.trace.error.message for message in output.errors] == [
        f"The saved state of stream 'contacts' has a malformed memo for account {ACCOUNT!r} (ids/1 is not a "
        "string); reset the stream to import it again"]


def test_a_0_2_0_state_of_each_ledger_is_read_and_written_back_the_same(fake: FakeJmap, config: dict[str, Any]) -> None:
    """A sync with nothing changed since: the account's entry as 0.2.0 saved it comes back member for member."""
    with_contacts(fake, "c1", "c2")
    fake.create("Email", with_attachments(1, "2", "3"))
    held = {"accounts": {ACCOUNT: {"state": fake.store("ContactCard").state, "memo": {"ids": ["c1", "c2"]}}}}
    assert json.dumps(final_state(read_stream(config, "contacts", state=held))) == json.dumps(held)
    counted = {"accounts": {ACCOUNT: {"state": fake.store("Email").state, "memo": {"partIds": {"3": 7, "2": 1}},
                                      "selection": {"start_date": None, "mailboxes": [], "exclude_mailboxes": []}}}}
    assert json.dumps(final_state(read_stream(config, "attachments", state=counted))) == json.dumps(counted)
