"""The attachments stream's state stays small whatever the mailbox size (issue 13, item 18), and deleted
emails' attachments still leave the destination."""

from __future__ import annotations

import json
from typing import Any

from .fake_jmap import FakeJmap, email
from .helpers import final_state, read_stream, stream_states

STATE_LIMIT = 4096  # bytes of one account's entry in the stream state
# Part ids as Cyrus gives them: structural, so a few cover a whole mailbox.
STRUCTURAL = (("2",), ("2", "3"), ("1.2",), ("2", "3", "4"), ("1.2", "1.3"), ("3",))


def with_attachments(number: int, *part_ids: str) -> dict[str, Any]:
    return {**email(number), "attachments": [
        {"partId": part_id, "blobId": f"B{number}-{part_id}", "name": f"file{part_id}.pdf",
         "type": "application/pdf", "size": 10, "disposition": "attachment", "cid": None}
        for part_id in part_ids
    ]}


def mailboxes(fake: FakeJmap) -> None:
    for mailbox_id, name, role in [("mb-inbox", "Inbox", "inbox"), ("mb-trash", "Trash", "trash")]:
        fake.create("Mailbox", {"id": mailbox_id, "name": name, "role": role, "parentId": None})


def account_bytes(state: dict[str, Any]) -> int:
    return len(json.dumps(state["accounts"]["acc1"], separators=(",", ":")))


def keys(output: Any) -> list[tuple[str, str, bool]]:
    return [(m.record.data["emailId"], m.record.data["partId"], m.record.data.get("_ab_cdc_deleted_at") is not None)
            for m in output.records]


def test_attachments_state_stays_under_4_kb_with_thousands_of_emails_with_attachments(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.max_objects_in_get = 500
    for number in range(3000):
        fake.create("Email", with_attachments(number, *STRUCTURAL[number % len(STRUCTURAL)]))
    first = read_stream(config, "attachments")
    assert len(first.records) == 3000 // len(STRUCTURAL) * sum(len(parts) for parts in STRUCTURAL)
    assert max(account_bytes(state) for state in stream_states(first)) < STATE_LIMIT

    for number in range(0, 3000, 7):
        fake.update("Email", f"M{number:04d}", keywords={"$seen": True})
    second = read_stream(config, "attachments", state=final_state(first))
    assert max(account_bytes(state) for state in stream_states(second)) < STATE_LIMIT


def test_attachments_state_stays_under_4_kb_when_a_server_gives_every_part_its_own_id(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.max_objects_in_get = 500
    for number in range(2000):
        fake.create("Email", with_attachments(number, f"part-{number:06d}-a", f"part-{number:06d}-b"))
    fake.create("Email", with_attachments(2000, "2"))
    fake.create("Email", with_attachments(2001, "2"))
    first = read_stream(config, "attachments")
    assert max(account_bytes(state) for state in stream_states(first)) < STATE_LIMIT
    warnings = [log.log.message for log in first.logs if "distinct part ids" in log.log.message]
    assert len(warnings) == 1 and "acc1" in warnings[0] and "most common" in warnings[0]

    fake.destroy("Email", "M2001")  # "2" is the most common part id: it was kept
    second = read_stream(config, "attachments", state=final_state(first))
    assert ("M2001", "2", True) in keys(second)


def test_destroyed_email_gets_a_deletion_for_each_part_id_the_account_uses(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.create("Email", with_attachments(1, "2", "3"))
    fake.create("Email", with_attachments(2, "1.2"))
    fake.create("Email", with_attachments(3))
    first = read_stream(config, "attachments")
    memo = final_state(first)["accounts"]["acc1"]["memo"]
    assert "parts" not in memo

    fake.destroy("Email", "M0002")
    fake.destroy("Email", "M0003")
    second = read_stream(config, "attachments", state=final_state(first))
    deleted = keys(second)
    assert all(is_deleted for _, _, is_deleted in deleted)
    assert {(email_id, part_id) for email_id, part_id, _ in deleted} == {
        (email_id, part_id) for email_id in ("M0002", "M0003") for part_id in ("2", "3", "1.2")
    }
    assert final_state(second)["accounts"]["acc1"]["memo"] == memo


def test_email_moved_out_of_the_selection_gets_deletions_of_its_own_parts(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    mailboxes(fake)
    fake.create("Email", with_attachments(1, "2", "3"))
    fake.create("Email", with_attachments(2, "1.2"))
    config["exclude_mailboxes"] = ["trash"]
    first = read_stream(config, "attachments")

    fake.update("Email", "M0001", mailboxIds={"mb-trash": True})
    moved_out = read_stream(config, "attachments", state=final_state(first))
    assert sorted(keys(moved_out)) == [("M0001", "2", True), ("M0001", "3", True)]


def test_a_flag_change_re_emits_the_same_attachments_where_the_selection_filters_mailboxes(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Without the old per-email map the stream cannot tell "stayed in" from "came into" the selection:
    it re-emits (attachments never change, so the rows are the same; nothing is downloaded)."""
    mailboxes(fake)
    fake.create("Email", with_attachments(1, "2", "3"))
    config["exclude_mailboxes"] = ["trash"]
    first = read_stream(config, "attachments")
    fake.update("Email", "M0001", keywords={"$seen": True})
    second = read_stream(config, "attachments", state=final_state(first))
    assert keys(second) == [("M0001", "2", False), ("M0001", "3", False)]
    assert [m.record.data["name"] for m in second.records] == ["file2.pdf", "file3.pdf"]


def test_a_flag_change_re_emits_nothing_where_no_mailbox_filter_can_change_the_selection(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """receivedAt is immutable, so with start_date alone an email's place in the selection never changes."""
    fake.create("Email", with_attachments(1, "2"))
    fake.create("Email", {**with_attachments(2, "3"), "receivedAt": "2023-06-01T00:00:00Z"})  # before start_date
    config["start_date"] = "2024-01-01T00:00:00Z"
    first = read_stream(config, "attachments")
    assert keys(first) == [("M0001", "2", False)]
    fake.update("Email", "M0001", keywords={"$seen": True})
    fake.update("Email", "M0002", keywords={"$seen": True})
    second = read_stream(config, "attachments", state=final_state(first))
    assert second.records == []


def test_old_state_with_a_map_of_every_email_is_read_and_shrinks(fake: FakeJmap, config: dict[str, Any]) -> None:
    for number in range(3000):
        fake.create("Email", with_attachments(number, *STRUCTURAL[number % len(STRUCTURAL)]))
    parts = {f"M{number:04d}": list(STRUCTURAL[number % len(STRUCTURAL)]) for number in range(3000)}
    old = {"accounts": {"acc1": {"state": fake.store("Email").state, "memo": {"parts": parts}}}}
    assert account_bytes(old) > 30_000

    fake.destroy("Email", "M0003")  # parts ("2", "3", "4")
    second = read_stream(config, "attachments", state=old)
    deleted = {(email_id, part_id) for email_id, part_id, is_deleted in keys(second) if is_deleted}
    assert {("M0003", "2"), ("M0003", "3"), ("M0003", "4")} <= deleted
    assert {part_id for _, part_id in deleted} == {part_id for parts in STRUCTURAL for part_id in parts}
    new = final_state(second)
    assert account_bytes(new) < 400 and "parts" not in new["accounts"]["acc1"]["memo"]


def test_old_state_with_an_empty_map_is_read(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.create("Email", with_attachments(1, "2"))
    old = {"accounts": {"acc1": {"state": fake.store("Email").state, "memo": {"parts": {}}}}}
    fake.create("Email", with_attachments(2, "3"))
    second = read_stream(config, "attachments", state=old)
    assert keys(second) == [("M0002", "3", False)]


def test_a_memo_of_the_wrong_shape_is_a_config_error_naming_the_stream(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.create("Email", with_attachments(1, "2"))
    broken = {"accounts": {"acc1": {"state": fake.store("Email").state, "memo": {"parts": ["2"]}}}}
    output = read_stream(config, "attachments", state=broken, expecting_exception=True)
    error = output.errors[0].trace.error
    assert error.failure_type.value == "config_error"
    assert "attachments" in error.message and "acc1" in error.message
