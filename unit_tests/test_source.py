"""The connector's commands as Airbyte runs them: spec, check, discover."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests_mock
from airbyte_cdk.test.entrypoint_wrapper import discover

from source_jmap import SourceJmap

from .conftest import PASSWORD
from .fake_jmap import FakeJmap
from .helpers import read_stream

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("test")


def test_spec_served_by_the_package_is_the_one_at_the_repository_root() -> None:
    served = SourceJmap().spec(logger)
    at_root = json.loads((ROOT / "spec.json").read_text())
    assert served.connectionSpecification == at_root["connectionSpecification"]


def test_check_succeeds_when_every_selected_account_answers_mailbox_query_and_get(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    status = SourceJmap().check(logger, config)
    assert status.status.value == "SUCCEEDED"
    assert fake.method_calls()[0] == ["Mailbox/query", "Mailbox/get"]


def test_check_asks_each_stream_for_one_page_of_what_its_read_will_ask(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    SourceJmap().check(logger, config)
    probes = [calls for calls in fake.method_calls()[1:] if calls[0].startswith(("Mailbox", "Email", "Thread"))]
    assert probes == [["Mailbox/get", "Mailbox/query", "Mailbox/get", "Mailbox/changes", "Mailbox/get"],
                      ["Email/get", "Email/query", "Email/get", "Email/changes", "Email/get"],
                      ["Thread/get", "Email/query", "Email/get", "Thread/get", "Thread/changes", "Thread/get"],
                      ["Email/get", "Email/query", "Email/get", "Email/changes", "Email/get"]]
    assert fake.sent_calls("Email/get")[1]["fetchTextBodyValues"] is True  # the emails stream's own arguments


def test_check_fails_where_read_would_on_a_mailbox_filter_that_matches_nothing(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.create("Mailbox", {"id": "mb-inbox", "name": "Inbox", "role": "inbox", "parentId": None})
    status = SourceJmap().check(logger, {**config, "mailboxes": ["Archief"]})
    assert status.status.value == "FAILED"
    assert status.message.startswith("mailboxes entry 'Archief' matches no mailbox name or role in account acc1")


def test_check_fails_where_the_server_refuses_what_the_read_will_ask_for(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    fake.override = lambda name, arguments: (
        ["error", {"type": "invalidArguments", "arguments": ["maxBodyValueBytes"]}]
        if name == "Email/get" and "maxBodyValueBytes" in arguments else None
    )
    status = SourceJmap().check(logger, config)
    assert status.status.value == "FAILED"
    assert status.message == "Email/get failed with JMAP error 'invalidArguments'"


def test_read_of_raw_messages_without_include_raw_message_fails_in_one_line_saying_what_to_turn_on(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    output = read_stream(config, "raw_messages", expecting_exception=True)
    [error] = [message for message in output.errors if message.trace.error.failure_type.value == "config_error"]
    assert error.trace.error.message == (
        "The catalog selects raw_messages, which this configuration does not provide; turn on include_raw_message "
        "for raw_messages"
    )
    assert output.records == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"session_url": "ftp://mail.example.com"}, "session_url must be an http:// or https:// URL"),
        ({"start_date": "last tuesday"}, "start_date 'last tuesday' is not an RFC 3339 date-time"),
        ({"account_ids": ["other"]}, "account_ids entry 'other' is not an account of this JMAP user"),
        ({"credentials": {"auth_type": "basic", "username": "alice"}}, "credentials.password: Field required"),
    ],
)
def test_check_fails_with_a_one_line_message_for_bad_settings(
    fake: FakeJmap, config: dict[str, Any], change: dict[str, Any], expected: str
) -> None:
    status = SourceJmap().check(logger, {**config, **change})
    assert status.status.value == "FAILED"
    assert expected in status.message
    assert "\n" not in status.message and PASSWORD not in status.message


def test_check_reports_a_mailbox_get_failure_on_a_selected_account(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.override = lambda name, arguments: ["error", {"type": "forbidden"}] if name == "Mailbox/get" else None
    status = SourceJmap().check(logger, config)
    assert status.status.value == "FAILED"
    assert status.message == "Mailbox/get failed with JMAP error 'forbidden'"


def test_discover_lists_every_stream_incremental_with_source_defined_cursor_and_no_network(
    config: dict[str, Any],
) -> None:
    with requests_mock.Mocker() as mocker:  # any request would fail: none is registered
        output = discover(SourceJmap(), config)
        assert mocker.call_count == 0
    streams = {stream.name: stream for stream in output.catalog.catalog.streams}
    assert set(streams) == {"mailboxes", "emails", "threads", "identities", "attachments", "contacts", "contact_groups",
                            "address_books", "calendars", "calendar_events", "quotas", "sieve_scripts"}
    for stream in streams.values():
        assert [mode.value for mode in stream.supported_sync_modes] == ["full_refresh", "incremental"]
        assert stream.source_defined_cursor and stream.default_cursor_field == ["_ab_cdc_updated_at"]
        keys = [key for [key] in stream.source_defined_primary_key]
        assert keys == (["accountId", "emailId", "partId"] if stream.name == "attachments" else ["accountId", "id"])
        assert "$ref" not in json.dumps(stream.json_schema)
        assert {*keys, "_ab_cdc_updated_at", "_ab_cdc_deleted_at"} <= set(stream.json_schema["properties"])
