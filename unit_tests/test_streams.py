"""The state-keyed stream loop, driven by an in-memory JMAP server."""

from __future__ import annotations

from typing import Any

from airbyte_cdk.models import SyncMode

from .fake_jmap import FakeJmap, email
from .helpers import final_state, ids, read_stream, stream_states


def seed(fake: FakeJmap, count: int) -> None:
    for number in range(count):
        fake.create("Email", email(number))


def test_first_sync_captures_state_before_paging_and_ends_with_it(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 5)

    def arrive_during_import(name: str, arguments: dict[str, Any]) -> None:
        if name == "Email/query" and "anchor" in arguments and "M0100" not in fake.store("Email").objects:
            fake.create("Email", email(100, "2023-01-01T00:00:00Z"))  # sorts before the anchor: paging misses it
        return None

    fake.override = arrive_during_import
    first = read_stream(config, "emails")
    assert "M0100" not in ids(first)
    assert final_state(first) == {"accounts": {"acc1": {"state": "5"}}}

    fake.override = None
    second = read_stream(config, "emails", state=final_state(first))
    assert ids(second) == ["M0100"]


def test_query_and_get_share_one_http_request_through_a_back_reference(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 2)
    read_stream(config, "emails")
    assert fake.method_calls() == [["Email/get", "Email/query", "Email/get"]]
    get_call = fake.requests[0]["methodCalls"][2][1]
    assert get_call["#ids"] == {"resultOf": "query", "name": "Email/query", "path": "/ids"}
    assert "ids" not in get_call


def test_pages_are_sized_by_max_objects_in_get_and_records_keep_query_order(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.max_objects_in_get = 4
    seed(fake, 10)
    output = read_stream(config, "emails")
    assert ids(output) == [f"M{n:04d}" for n in range(10)]
    queries = [body["methodCalls"][-2][1] for body in fake.requests]
    assert [query["limit"] for query in queries] == [4, 4, 4]
    assert [query.get("anchor") for query in queries] == [None, "M0003", "M0007"]


def test_state_is_checkpointed_once_per_page_after_that_pages_records(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 7)
    output = read_stream(config, "emails")
    kinds = [message.type.value for message in output._messages if message.type.value in ("RECORD", "STATE")]
    assert kinds == ["RECORD"] * 3 + ["STATE"] + ["RECORD"] * 3 + ["STATE"] + ["RECORD"] + ["STATE"]
    assert [state["accounts"]["acc1"].get("import") for state in stream_states(output)] == [
        {"anchor": "M0002", "receivedAt": "2024-01-03T10:02:00Z"},
        {"anchor": "M0005", "receivedAt": "2024-01-06T10:05:00Z"},
        None,
    ]


def test_interrupted_import_resumes_after_the_last_emitted_page(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 8)
    checkpoint = stream_states(read_stream(config, "emails"))[0]  # as if killed after the first page
    resumed = read_stream(config, "emails", state=checkpoint)
    assert ids(resumed) == [f"M{n:04d}" for n in range(3, 8)]
    assert final_state(resumed) == {"accounts": {"acc1": {"state": "8"}}}


def test_resume_whose_anchor_was_destroyed_goes_on_from_its_received_at(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 8)
    checkpoint = stream_states(read_stream(config, "emails"))[0]
    fake.destroy("Email", "M0002")
    resumed = read_stream(config, "emails", state=checkpoint)
    assert ids(resumed) == [f"M{n:04d}" for n in range(3, 8)]


def test_incremental_read_follows_has_more_changes_until_done(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 2)
    state = final_state(read_stream(config, "emails"))
    for number in range(2, 9):
        fake.create("Email", email(number))
    output = read_stream(config, "emails", state=state)
    assert sorted(ids(output)) == [f"M{n:04d}" for n in range(2, 9)]
    assert [call[0] for call in fake.method_calls()[-3:]] == ["Email/changes"] * 3
    assert final_state(output) == {"accounts": {"acc1": {"state": "9"}}}


def test_updated_email_is_emitted_with_its_current_properties(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 2)
    state = final_state(read_stream(config, "emails"))
    fake.update("Email", "M0001", keywords={"$seen": True})
    output = read_stream(config, "emails", state=state)
    [record] = [message.record.data for message in output.records]
    assert (record["id"], record["keywords"], record.get("_ab_cdc_deleted_at")) == ("M0001", {"$seen": True}, None)


def test_destroyed_email_is_emitted_as_deleted_record(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 3)
    state = final_state(read_stream(config, "emails"))
    fake.destroy("Email", "M0001")
    output = read_stream(config, "emails", state=state)
    [record] = [message.record.data for message in output.records]
    assert record["id"] == "M0001" and record["accountId"] == "acc1"
    assert record["_ab_cdc_deleted_at"] is not None
    assert record["_ab_cdc_updated_at"] == record["_ab_cdc_deleted_at"]


def test_incremental_read_without_changes_emits_no_records_and_keeps_state(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    seed(fake, 3)
    state = final_state(read_stream(config, "emails"))
    requests_before = len(fake.requests)
    output = read_stream(config, "emails", state=state)
    assert output.records == []
    assert final_state(output) == state
    assert len(fake.requests) - requests_before == 1


def test_state_the_server_cannot_calculate_changes_from_leads_to_a_full_reimport(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    seed(fake, 4)
    state = final_state(read_stream(config, "emails"))
    fake.purged_before = 10
    fake.create("Email", email(50))
    output = read_stream(config, "emails", state=state)
    assert len(ids(output)) == 5
    assert any("cannot calculate changes" in log.log.message for log in output.logs)
    assert final_state(output) == {"accounts": {"acc1": {"state": "5"}}}


def test_cyrus_invalid_arguments_on_since_state_also_leads_to_a_full_reimport(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    seed(fake, 4)
    output = read_stream(config, "emails", state={"accounts": {"acc1": {"state": "garbage"}}})
    assert len(ids(output)) == 4
    assert output.errors == []


def test_changes_that_make_no_progress_end_with_a_clear_error(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 1)

    def stuck(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name == "Email/changes":
            return [name, {"oldState": "1", "newState": "1", "hasMoreChanges": True,
                           "created": [], "updated": [], "destroyed": []}]
        return None

    fake.override = stuck
    output = read_stream(config, "emails", state={"accounts": {"acc1": {"state": "1"}}}, expecting_exception=True)
    assert "not making progress" in output.errors[-1].trace.error.message


def test_start_date_filters_the_import_and_the_changes(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.create("Email", email(1, "2023-06-01T00:00:00Z"))
    fake.create("Email", email(2, "2024-06-01T00:00:00Z"))
    config["start_date"] = "2024-01-01T01:00:00+01:00"
    first = read_stream(config, "emails")
    assert ids(first) == ["M0002"]
    assert fake.requests[0]["methodCalls"][1][1]["filter"] == {"after": "2024-01-01T00:00:00Z"}
    fake.create("Email", email(3, "2022-01-01T00:00:00Z"))
    fake.create("Email", email(4, "2025-01-01T00:00:00Z"))
    second = read_stream(config, "emails", state=final_state(first))
    assert ids(second) == ["M0004"]


def test_full_refresh_ignores_the_saved_state(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 3)
    state = final_state(read_stream(config, "emails"))
    output = read_stream(config, "emails", sync_mode=SyncMode.full_refresh, state=state)
    assert len(ids(output)) == 3


def test_state_not_written_by_this_connector_is_a_config_error(fake: FakeJmap, config: dict[str, Any]) -> None:
    output = read_stream(config, "emails", state={"cursor": "2024-01-01"}, expecting_exception=True)
    error = output.errors[-1].trace.error
    assert error.failure_type.value == "config_error"
    assert "reset the stream" in error.message


def test_mailboxes_stream_reads_every_property_and_adds_account_id(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.create("Mailbox", {"id": "mb1", "name": "Inbox", "role": "inbox", "parentId": None, "totalEmails": 3})
    output = read_stream(config, "mailboxes")
    [record] = [message.record.data for message in output.records]
    assert record["name"] == "Inbox" and record["accountId"] == "acc1" and record["totalEmails"] == 3
    assert "properties" not in fake.requests[0]["methodCalls"][2][1]
