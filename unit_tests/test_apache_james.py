"""A fake that behaves as Apache James does: Email/query refuses `anchor`, Mailbox/query wants `filter.role`.

From apache/james-project: EmailQueryMethod.scala raises UnsupportedRequestParameterException("anchor"),
answered as `invalidArguments` "The following parameter anchor is syntactically valid, but is not
supported by the server."; MailboxQuery.scala answers only a filter on `role`.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from source_jmap import SourceJmap

from .fake_jmap import FakeJmap, email
from .helpers import final_state, ids, read_stream, stream_states

ANCHOR_REFUSED = ["error", {"type": "invalidArguments", "description": (
    "The following parameter anchor is syntactically valid, but is not supported by the server.")}]


@pytest.fixture
def james(fake: FakeJmap) -> FakeJmap:
    def behave_as_james(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name == "Email/query" and ("anchor" in arguments or "anchorOffset" in arguments):
            return ANCHOR_REFUSED
        if name == "Mailbox/query" and "role" not in (arguments.get("filter") or {}):
            return ["error", {"type": "invalidArguments", "description": "Missing 'role' in filter"}]
        return None

    fake.override = behave_as_james
    fake.create("Mailbox", {"id": "mb-inbox", "name": "Inbox", "role": "inbox", "parentId": None})
    fake.create("Mailbox", {"id": "mb-trash", "name": "Trash", "role": "trash", "parentId": None})
    # Bulk imports give many emails the same receivedAt: ties longer than a page (3 here).
    for number in range(11):
        fake.create("Email", email(number, received_at=f"2024-01-0{1 + number // 5}T10:00:00Z"))
    return fake


def test_every_email_arrives_once_from_a_server_that_refuses_anchors(james: FakeJmap, config: dict[str, Any]) -> None:
    output = read_stream(config, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(11)]
    assert any("refuses `anchor`" in log.log.message for log in output.logs)


def test_an_import_without_anchors_resumes_where_it_was_killed(james: FakeJmap, config: dict[str, Any]) -> None:
    checkpoints = stream_states(read_stream(config, "emails"))  # the import's start, then one after each page
    resumed = read_stream(config, "emails", state=checkpoints[2])
    assert "anchor" not in checkpoints[2]["accounts"]["acc1"]["import"]
    emitted_before = set(ids(read_stream(config, "emails"))[:6])
    assert set(ids(resumed)) | emitted_before == {f"M{number:04d}" for number in range(11)}


def test_mailboxes_are_read_with_mailbox_get_where_mailbox_query_is_refused(
    james: FakeJmap, config: dict[str, Any]
) -> None:
    output = read_stream(config, "mailboxes")
    assert sorted(ids(output)) == ["mb-inbox", "mb-trash"] and output.errors == []


def test_a_mailbox_filter_works_where_mailbox_query_is_refused(james: FakeJmap, config: dict[str, Any]) -> None:
    james.update("Email", "M0000", mailboxIds={"mb-trash": True})
    output = read_stream({**config, "exclude_mailboxes": ["trash"]}, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(1, 11)]


def test_incremental_syncs_work_on_a_server_that_refuses_anchors(james: FakeJmap, config: dict[str, Any]) -> None:
    first = read_stream(config, "emails")
    james.create("Email", email(20))
    assert ids(read_stream(config, "emails", state=final_state(first))) == ["M0020"]


def test_check_succeeds_on_a_server_that_refuses_anchors_and_mailbox_query(
    james: FakeJmap, config: dict[str, Any]
) -> None:
    """The read serves James (above); check failed it with "Mailbox/query failed with JMAP error 'invalidArguments':
    Missing 'role' in filter" (issue 18)."""
    status = SourceJmap().check(logging.getLogger("test"), {**config, "exclude_mailboxes": ["trash"]})
    assert status.status.value == "SUCCEEDED", status.message
