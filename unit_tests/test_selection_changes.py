"""Emails that enter or leave the selection, and selections that change between syncs (issue 13, items 1 and 2)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from .fake_jmap import FakeJmap, email
from .helpers import final_state, ids, read_stream


@pytest.fixture
def mailboxes(fake: FakeJmap) -> FakeJmap:
    for mailbox_id, name, role in [("mb-inbox", "Inbox", "inbox"), ("mb-junk", "Junk", "junk")]:
        fake.create("Mailbox", {"id": mailbox_id, "name": name, "role": role, "parentId": None})
    fake.mocker.get(re.compile(r"https://jmap\.test/jmap/download/"),
                    content=lambda request, context: request.path.split("/")[-2].encode())
    return fake


def in_junk(number: int) -> dict[str, Any]:
    return email(number) | {"blobId": f"G{number}", "size": 10, "mailboxIds": {"mb-junk": True}}


def raw_of(output: Any) -> dict[str, str | None]:
    return {message.record.data["id"]: (base64.b64decode(message.record.data["raw_message"]).decode()
                                        if "raw_message" in message.record.data else None)
            for message in output.records}


def test_an_email_marked_not_spam_enters_raw_messages_when_it_moves_out_of_junk(
    mailboxes: FakeJmap, config: dict[str, Any]
) -> None:
    config |= {"include_raw_message": True, "exclude_mailboxes": ["junk"]}
    mailboxes.create("Email", in_junk(1))
    first = read_stream(config, "raw_messages")
    assert ids(first) == []
    mailboxes.update("Email", "M0001", mailboxIds={"mb-inbox": True})
    second = read_stream(config, "raw_messages", state=final_state(first))
    assert raw_of(second) == {"M0001": "g1"}


def test_an_email_moved_into_an_excluded_mailbox_is_deleted_from_raw_messages(
    mailboxes: FakeJmap, config: dict[str, Any]
) -> None:
    config |= {"include_raw_message": True, "exclude_mailboxes": ["junk"]}
    mailboxes.create("Email", in_junk(1) | {"mailboxIds": {"mb-inbox": True}})
    first = read_stream(config, "raw_messages")
    assert ids(first) == ["M0001"]
    mailboxes.update("Email", "M0001", mailboxIds={"mb-junk": True})
    second = read_stream(config, "raw_messages", state=final_state(first))
    assert [(m.record.data["id"], m.record.data.get("_ab_cdc_deleted_at") is not None) for m in second.records] == [
        ("M0001", True),
    ]


@pytest.mark.parametrize("stream", ["emails", "attachments", "raw_messages"])
def test_an_updated_email_that_left_the_selection_keeps_its_place_among_the_updated_ones_in_every_stream(
    mailboxes: FakeJmap, config: dict[str, Any], stream: str
) -> None:
    """One record path for every stream (issue 19): raw_messages put such deletions after the page's downloads."""
    config |= {"include_raw_message": True, "exclude_mailboxes": ["junk"]}
    for number in (1, 2, 3):
        mailboxes.create("Email", in_junk(number) | {"mailboxIds": {"mb-inbox": True},
                                                     "attachments": [{"partId": "2", "blobId": f"B{number}"}]})
    first = read_stream(config, stream)
    mailboxes.update("Email", "M0001", keywords={"$seen": True})
    mailboxes.update("Email", "M0002", mailboxIds={"mb-junk": True})
    mailboxes.update("Email", "M0003", keywords={"$seen": True})
    second = read_stream(config, stream, state=final_state(first))
    key = "emailId" if stream == "attachments" else "id"
    records = [(m.record.data[key], "_ab_cdc_deleted_at" in m.record.data) for m in second.records]
    assert records in ([("M0001", False), ("M0002", True), ("M0003", False)],  # in the order of the page's
                       [("M0003", False), ("M0002", True), ("M0001", False)])  # Email/get, whichever it is


def test_a_flag_change_downloads_nothing_when_the_selection_filters_no_mailbox(
    mailboxes: FakeJmap, config: dict[str, Any]
) -> None:
    config |= {"include_raw_message": True, "exclude_mailboxes": []}
    mailboxes.create("Email", in_junk(1))
    first = read_stream(config, "raw_messages")
    mailboxes.update("Email", "M0001", keywords={"$seen": True})
    assert read_stream(config, "raw_messages", state=final_state(first)).records == []


WIDER = {
    "exclusion emptied": ({"exclude_mailboxes": ["junk"]}, {"exclude_mailboxes": []}),
    "start_date removed": ({"start_date": "2024-01-03T00:00:00Z"}, {}),
    "a mailbox added": ({"mailboxes": ["inbox"]}, {"mailboxes": ["inbox", "junk"]}),
}


# Threads follow the account, not the mailbox filters (an email moved out of Trash keeps its thread
# unchanged, so Thread/changes never brings it): only start_date narrows them.
@pytest.mark.parametrize(("stream", "change"), [
    *((stream, change) for stream in ("emails", "raw_messages") for change in WIDER),
    ("threads", "start_date removed"),
])
def test_a_wider_selection_brings_in_what_it_now_covers_and_says_why(
    mailboxes: FakeJmap, config: dict[str, Any], stream: str, change: str
) -> None:
    before, after = WIDER[change]
    config |= {"include_raw_message": True}
    mailboxes.create("Email", email(1) | {"blobId": "G1", "size": 10})  # received 2024-01-02, in INBOX
    mailboxes.create("Email", in_junk(2) | {"mailboxIds": {"mb-inbox": True}})  # 2024-01-03, in INBOX
    mailboxes.create("Email", in_junk(3))  # 2024-01-04, in Junk
    for number in (1, 2, 3):
        mailboxes.create("Thread", {"id": f"T{number:04d}", "emailIds": [f"M{number:04d}"]})
    first = read_stream({**config, "exclude_mailboxes": [], **before}, stream)
    second = read_stream({**config, "exclude_mailboxes": [], **after}, stream, state=final_state(first))
    every = read_stream({**config, "exclude_mailboxes": [], **after}, stream)
    assert set(ids(first)) < set(ids(every))
    assert set(ids(second)) == set(ids(every))
    assert any("the email selection changed since the last sync" in log.log.message for log in second.logs)


def test_a_state_written_before_states_knew_their_selection_is_taken_as_it_is(
    mailboxes: FakeJmap, config: dict[str, Any]
) -> None:
    mailboxes.create("Email", email(1))
    state = final_state(read_stream(config, "emails"))
    del state["accounts"]["acc1"]["selection"]
    second = read_stream(config, "emails", state=state)
    assert ids(second) == [] and "selection" in final_state(second)["accounts"]["acc1"]


def test_a_thread_whose_email_moves_out_of_an_excluded_mailbox_is_in_the_destination(
    mailboxes: FakeJmap, config: dict[str, Any]
) -> None:
    config |= {"exclude_mailboxes": ["junk"]}
    mailboxes.create("Email", in_junk(1))
    mailboxes.create("Thread", {"id": "T0001", "emailIds": ["M0001"]})
    first = read_stream(config, "threads")
    mailboxes.update("Email", "M0001", mailboxIds={"mb-inbox": True})  # its Thread does not change
    second = read_stream(config, "threads", state=final_state(first))
    assert set(ids(first)) | set(ids(second)) == {"T0001"}


def test_threads_are_not_imported_again_when_only_the_mailbox_filters_change(
    mailboxes: FakeJmap, config: dict[str, Any]
) -> None:
    mailboxes.create("Email", in_junk(1))
    mailboxes.create("Thread", {"id": "T0001", "emailIds": ["M0001"]})
    first = read_stream({**config, "exclude_mailboxes": ["junk"]}, "threads")
    second = read_stream({**config, "mailboxes": ["inbox"]}, "threads", state=final_state(first))
    assert ids(first) == ["T0001"] and ids(second) == []
    assert not any("the email selection changed" in log.log.message for log in second.logs)
