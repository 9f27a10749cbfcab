"""Contacts, calendars and sieve scripts in their standard dialects, against the in-memory fake server.

No server speaking RFC 9610 or JMAP Calendars can run on the project's machines, so the objects here are
the specifications' own examples: the cards of RFC 9553 (JSContact, which RFC 9610's ContactCard is) with
RFC 9610's `id` and `addressBookIds`, and the events of RFC 8984 section 6 (JSCalendar, which JMAP
Calendars' CalendarEvent is) with the draft's `id` and `calendarIds`. Cyrus's dialect is tested against
the real server in integration_tests/test_account_streams.py.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput

from .fake_jmap import ACCOUNT, ORIGIN, FakeJmap
from .helpers import final_state, read_stream, stream_states

CONTACTS = "urn:ietf:params:jmap:contacts"
CALENDARS = "urn:ietf:params:jmap:calendars"
SIEVE = "urn:ietf:params:jmap:sieve"
CYRUS_CONTACTS = "https://cyrusimap.org/ns/jmap/contacts"

# RFC 9553 section 1.2 (a card) and section 2.1.6 (a group), as RFC 9610 ContactCards.
JOHN: dict[str, Any] = {
    "id": "c1", "addressBookIds": {"b1": True},
    "@type": "Card", "version": "1.0", "uid": "22B2C7DF-9120-4969-8460-05956FE6B065", "kind": "individual",
    "name": {"components": [{"kind": "given", "value": "John"}, {"kind": "surname", "value": "Doe"}],
             "isOrdered": True},
}
DOE_FAMILY: dict[str, Any] = {
    "id": "c2", "addressBookIds": {"b1": True},
    "@type": "Card", "version": "1.0", "kind": "group", "uid": "urn:uuid:ab4310aa-fa43-11e9-8f0b-362b9e155667",
    "name": {"full": "The Doe family"},
    "members": {"urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af": True,
                "urn:uuid:b8767877-b4a1-4c70-9acc-505d3819e519": True},
}
# A card with no `kind` is an individual (RFC 9553 section 2.1.4).
JANE: dict[str, Any] = {"id": "c3", "addressBookIds": {"b1": True}, "@type": "Card", "version": "1.0",
                        "uid": "urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af", "name": {"full": "Jane Doe"}}
ADDRESS_BOOK: dict[str, Any] = {"id": "b1", "name": "Personal", "description": None, "sortOrder": 0,
                                "isDefault": True, "isSubscribed": True, "shareWith": None,
                                "myRights": {"mayRead": True, "mayWrite": True, "mayShare": True, "mayDelete": False}}

# RFC 8984 section 6.1 (a simple event), 6.3 (an all-day event) and 6.9 (a recurring event with overrides).
CALENDAR: dict[str, Any] = {"id": "k1", "name": "Personal", "color": "#3a87ad", "sortOrder": 0,
                            "isSubscribed": True, "isVisible": True, "isDefault": True}
SIMPLE_EVENT: dict[str, Any] = {
    "id": "e1", "calendarIds": {"k1": True},
    "@type": "Event", "uid": "a8df6573-0474-496d-8496-033ad45d7fea", "updated": "2020-01-02T18:23:04Z",
    "title": "Some event", "start": "2020-01-15T13:00:00", "timeZone": "America/New_York", "duration": "PT1H",
}
ALL_DAY_EVENT: dict[str, Any] = {
    "id": "e2", "calendarIds": {"k1": True},
    "@type": "Event", "uid": "a8df6573-0474-496d-8496-033ad45d7fea", "updated": "2020-01-02T18:23:04Z",
    "title": "April Fool's Day", "showWithoutTime": True, "start": "1900-04-01T00:00:00", "duration": "P1D",
    "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "yearly"}],
}
RECURRING_EVENT: dict[str, Any] = {
    "id": "e3", "calendarIds": {"k1": True},
    "@type": "Event", "uid": "5ef8e1a0-ff45-4a07-a7e3-a0dbe3d0bdf1", "title": "Calculus I",
    "start": "2020-01-08T09:00:00", "timeZone": "Europe/London", "duration": "PT1H30M",
    "locations": {"mlab": {"@type": "Location", "title": "Math lab room 1",
                           "description": "Math Lab I, Department of Mathematics"}},
    "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "weekly", "until": "2020-06-24T09:00:00"}],
    "recurrenceOverrides": {"2020-01-07T14:00:00": {"title": "Introduction to Calculus I (optional)",
                                                     "locations/mlab/title": "Math lab room 1"},
                            "2020-04-01T09:00:00": {"excluded": True}},
}
# RFC 9661's SieveScript; the script text is downloaded from the blob.
SCRIPT: dict[str, Any] = {"id": "s1", "name": "vacation", "blobId": "Bsieve1", "isActive": True}
SCRIPT_TEXT = 'require ["fileinto"];\r\nif header :contains "subject" "Rechnung" { fileinto "Factures/Reçus"; }\r\n'


def put(fake: FakeJmap, jmap_type: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        fake.create(jmap_type, copy.deepcopy(obj))


def records(output: EntrypointOutput) -> list[dict[str, Any]]:
    return [message.record.data for message in output.records]


def verbatim(output: EntrypointOutput) -> list[dict[str, Any]]:
    """The records as JMAP objects: accountId (always this account) and the CDC columns left out."""
    assert {record["accountId"] for record in records(output)} <= {ACCOUNT}
    return [{k: v for k, v in record.items() if k != "accountId" and not k.startswith("_ab_cdc_")}
            for record in records(output) if not record.get("_ab_cdc_deleted_at")]


def without_nulls(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as its record shows it: the CDK's serializer leaves out top-level nulls (nested ones stay)."""
    return {key: value for key, value in obj.items() if value is not None}


def deleted(output: EntrypointOutput) -> list[str]:
    return [record["id"] for record in records(output) if record.get("_ab_cdc_deleted_at")]


def logs(output: EntrypointOutput) -> str:
    return "\n".join(message.log.message for message in output.logs)


@pytest.fixture
def contacts_account(fake: FakeJmap) -> FakeJmap:
    fake.account_capabilities = {CONTACTS: {"maxAddressBooksPerCard": None, "mayCreateAddressBook": True}}
    put(fake, "AddressBook", ADDRESS_BOOK)
    put(fake, "ContactCard", JOHN, DOE_FAMILY, JANE)
    return fake


def test_rfc9610_cards_that_are_not_groups_are_contacts_read_verbatim(
    contacts_account: FakeJmap, config: dict[str, Any]
) -> None:
    output = read_stream(config, "contacts", SyncMode.full_refresh)
    assert sorted(verbatim(output), key=lambda card: card["id"]) == [JOHN, JANE]
    assert contacts_account.sent("ContactCard/query", "filter") == [
        {"operator": "NOT", "conditions": [{"kind": "group"}]}]
    assert all(CONTACTS in body["using"] for body in contacts_account.requests)


def test_rfc9610_cards_of_kind_group_are_contact_groups(contacts_account: FakeJmap, config: dict[str, Any]) -> None:
    output = read_stream(config, "contact_groups", SyncMode.full_refresh)
    assert verbatim(output) == [DOE_FAMILY]
    assert contacts_account.sent("ContactCard/query", "filter") == [{"kind": "group"}]


def test_rfc9610_address_books_are_read_whole_as_there_is_no_address_book_query(
    contacts_account: FakeJmap, config: dict[str, Any]
) -> None:
    output = read_stream(config, "address_books", SyncMode.full_refresh)
    assert verbatim(output) == [without_nulls(ADDRESS_BOOK)]
    assert contacts_account.method_calls() == [["AddressBook/get"]]


def test_a_card_that_becomes_a_group_leaves_contacts_and_joins_contact_groups(
    contacts_account: FakeJmap, config: dict[str, Any]
) -> None:
    first_contacts = read_stream(config, "contacts")
    first_groups = read_stream(config, "contact_groups")
    contacts_account.update("ContactCard", "c3", kind="group", members={JOHN["uid"]: True})
    contacts_account.destroy("ContactCard", "c1")

    contacts = read_stream(config, "contacts", state=final_state(first_contacts))
    groups = read_stream(config, "contact_groups", state=final_state(first_groups))
    assert verbatim(contacts) == [] and sorted(deleted(contacts)) == ["c1", "c3"]
    assert [card["id"] for card in verbatim(groups)] == ["c3"] and verbatim(groups)[0]["kind"] == "group"
    # c1 was never a group, but ContactCard/changes reports it to both streams: a deletion row for a key the table never
    # had changes nothing in a deduplicating destination, and no ledger is trusted to say which ids were never emitted
    assert deleted(groups) == ["c1"]


def test_standard_calendars_and_jscalendar_events_are_read_verbatim_then_by_their_changes(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.account_capabilities = {CALENDARS: {}}
    put(fake, "Calendar", CALENDAR)
    put(fake, "CalendarEvent", SIMPLE_EVENT, ALL_DAY_EVENT, RECURRING_EVENT)
    calendars = read_stream(config, "calendars")
    events = read_stream(config, "calendar_events")
    assert verbatim(calendars) == [CALENDAR]
    assert sorted(verbatim(events), key=lambda event: event["id"]) == [SIMPLE_EVENT, ALL_DAY_EVENT, RECURRING_EVENT]
    assert all(CALENDARS in body["using"] for body in fake.requests)

    fake.update("CalendarEvent", "e1", title="Some event (moved)", start="2020-01-16T13:00:00")
    fake.destroy("CalendarEvent", "e2")
    fake.requests.clear()
    changes = read_stream(config, "calendar_events", state=final_state(events))
    assert verbatim(changes) == [{**SIMPLE_EVENT, "title": "Some event (moved)", "start": "2020-01-16T13:00:00"}]
    assert deleted(changes) == ["e2"]
    assert fake.method_calls() == [["CalendarEvent/changes", "CalendarEvent/get", "CalendarEvent/get"]]


def test_sieve_scripts_carry_their_text_downloaded_from_their_blob(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.account_capabilities = {SIEVE: {"maxSizeScriptName": 512, "sieveExtensions": ["fileinto"]}}
    put(fake, "SieveScript", SCRIPT)
    download = fake.mocker.get(f"{ORIGIN}/jmap/download/{ACCOUNT}/Bsieve1/vacation.sieve?accept=application%2Fsieve",
                               content=SCRIPT_TEXT.encode())
    output = read_stream(config, "sieve_scripts", SyncMode.full_refresh)
    assert verbatim(output) == [{**SCRIPT, "content": SCRIPT_TEXT}]
    assert download.call_count == 1


def test_objects_gone_from_a_type_without_changes_come_as_deletions_of_the_next_whole_read(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.account_capabilities = {CALENDARS: {}}
    put(fake, "Calendar", CALENDAR, {**CALENDAR, "id": "k2", "name": "Work"})

    def no_calendar_changes(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        return ["error", {"type": "unknownMethod"}] if name == "Calendar/changes" else None

    fake.override = no_calendar_changes
    first = read_stream(config, "calendars")
    fake.destroy("Calendar", "k2")
    second = read_stream(config, "calendars", state=final_state(first))
    assert verbatim(second) == [CALENDAR] and deleted(second) == ["k2"]
    assert final_state(second)["accounts"][ACCOUNT]["memo"] == {"ids": ["k1"]}


@pytest.mark.parametrize("stream", ["contacts", "contact_groups", "address_books", "calendars", "calendar_events",
                                    "quotas", "sieve_scripts"])
def test_an_account_without_the_capability_yields_nothing_and_says_why(
    fake: FakeJmap, config: dict[str, Any], stream: str
) -> None:
    output = read_stream(config, stream)
    assert records(output) == [] and output.errors == []
    assert f"{stream}: account {ACCOUNT} has no " in logs(output)
    assert fake.requests == []


def test_the_standard_dialect_wins_where_an_account_offers_both(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.account_capabilities = {CYRUS_CONTACTS: {}, CONTACTS: {}}
    put(fake, "ContactCard", JOHN)
    output = read_stream(config, "contacts", SyncMode.full_refresh)
    assert verbatim(output) == [JOHN]
    names = {name for calls in fake.method_calls() for name in calls}
    assert "ContactCard/query" in names and all(name.startswith("ContactCard/") for name in names)


def test_a_capability_the_server_lists_but_does_not_serve_yields_nothing_and_says_why(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Cyrus without its extensions lists https://cyrusimap.org/ns/jmap/sieve but answers unknownMethod."""
    fake.account_capabilities = {"https://cyrusimap.org/ns/jmap/sieve": {}}
    fake.override = lambda name, arguments: ["error", {"type": "unknownMethod"}] if name.startswith("Sieve") else None
    output = read_stream(config, "sieve_scripts")
    assert records(output) == [] and output.errors == []
    assert "lists https://cyrusimap.org/ns/jmap/sieve but has no SieveScript/get" in logs(output)


def test_a_full_read_killed_and_resumed_still_finds_the_deletions_it_was_looking_for(
    contacts_account: FakeJmap, config: dict[str, Any]
) -> None:
    """The checkpoint of a full read that replaces a state keeps the ids not seen yet ("unseen")."""
    checkpoint = {"accounts": {ACCOUNT: {"state": "3", "import": {"anchor": "c1"},
                                         "memo": {"ids": ["c1"], "unseen": ["c3", "gone"]}}}}
    output = read_stream(config, "contacts", state=checkpoint)
    assert [card["id"] for card in verbatim(output)] == ["c3"]  # c1 came before the kill, c2 is a group
    assert deleted(output) == ["gone"]
    assert final_state(output)["accounts"][ACCOUNT]["memo"] == {"ids": ["c1", "c3"]}


def test_a_contact_destroyed_after_an_upgrade_from_a_state_without_memo_is_deleted(
    contacts_account: FakeJmap, config: dict[str, Any]
) -> None:
    """A state without a memo says nothing of what the destination holds: an incremental sync that saw only one
    contact changed must not save a memo that lists only that one, which would leave the others undeletable."""
    state = final_state(read_stream(config, "contacts"))
    del state["accounts"][ACCOUNT]["memo"]  # as a version before the memo wrote it
    contacts_account.update("ContactCard", "c3", name={"full": "Jane B. Doe"})
    state = final_state(read_stream(config, "contacts", state=state))
    assert "memo" not in state["accounts"][ACCOUNT]
    contacts_account.destroy("ContactCard", "c1")
    assert deleted(read_stream(config, "contacts", state=state)) == ["c1"]


def test_a_memo_that_is_not_a_list_of_ids_is_a_config_error(contacts_account: FakeJmap, config: dict[str, Any]) -> None:
    output = read_stream(config, "contacts", state={"accounts": {ACCOUNT: {"state": "3", "memo": {"ids": "c1"}}}},
                         expecting_exception=True)
    assert records(output) == []
    assert any("malformed memo" in (message.trace.error.message or "") for message in output.errors)


def test_the_state_of_an_account_with_thousands_of_contacts_stays_under_4_kb_and_says_what_that_costs(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.account_capabilities = {CONTACTS: {}}
    fake.max_objects_in_get = 500
    put(fake, "ContactCard", *({**JOHN, "id": f"card-{number:05d}-{'x' * 24}"} for number in range(2000)))
    first = read_stream(config, "contacts")
    assert len(records(first)) == 2000
    assert max(len(json.dumps(state)) for state in stream_states(first)) < 4096
    assert final_state(first)["accounts"][ACCOUNT]["memo"] == {"overflow": True}
    assert "holds more objects than the state can list" in logs(first)
    fake.destroy("ContactCard", "card-00007-" + "x" * 24)
    second = read_stream(config, "contacts", state=final_state(first))
    assert deleted(second) == ["card-00007-" + "x" * 24]  # /changes still brings every deletion
    assert final_state(second)["accounts"][ACCOUNT]["memo"] == {"overflow": True}  # still none are known
