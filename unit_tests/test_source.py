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
    assert fake.method_calls() == [["Mailbox/query", "Mailbox/get"]]


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
