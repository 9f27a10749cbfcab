"""`check` succeeds exactly where a read of every stream would (issue 18, item 8).

Apache James refuses `Mailbox/query` without a `role` filter: the read fell back to `Mailbox/get`, the check
did not, and failed a server the read served ("Mailbox/query failed with JMAP error 'invalidArguments'"). Each
server dialect below is read in full and checked; both must agree, and each is expected to go one way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from source_jmap import SourceJmap

from .fake_jmap import FakeJmap, email

logger = logging.getLogger("test")
STREAMS = ("mailboxes", "emails", "threads", "attachments")
Override = Callable[[str, dict[str, Any]], list[Any] | None]


def refuses(method: str, unless: Callable[[dict[str, Any]], bool], description: str) -> Override:
    def answer(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name == method and not unless(arguments):
            return ["error", {"type": "invalidArguments", "description": description}]
        return None
    return answer


# name: (how the server differs from the fake's plain RFC 8620 behaviour, whether a read of every stream succeeds)
DIALECTS: dict[str, tuple[Override | None, bool]] = {
    "plain": (None, True),
    # James: Mailbox/query answers only a filter on role; Mailbox/get ids: null serves every mailbox.
    "mailbox query wants a role": (
        refuses("Mailbox/query", lambda arguments: "role" in (arguments.get("filter") or {}),
                "Missing 'role' in filter"),
        True,
    ),
    # ... and where Mailbox/get of every mailbox is refused too, neither can list the mailboxes.
    "no way to list mailboxes": (
        lambda name, arguments: (
            ["error", {"type": "invalidArguments", "description": "Missing 'role' in filter"}]
            if name == "Mailbox/query" or (name == "Mailbox/get" and arguments.get("ids") is None) else None
        ),
        False,
    ),
    "email query refuses the mailbox filter": (
        refuses("Email/query", lambda arguments: "inMailboxOtherThan" not in str(arguments.get("filter")),
                "Unsupported filter inMailboxOtherThan"),
        False,
    ),
    "email query refuses calculateTotal": (
        refuses("Email/query", lambda arguments: not arguments.get("calculateTotal"), "calculateTotal unsupported"),
        False,
    ),
}


@pytest.fixture
def server(fake: FakeJmap) -> FakeJmap:
    fake.create("Mailbox", {"id": "mb-inbox", "name": "Inbox", "role": "inbox", "parentId": None})
    fake.create("Mailbox", {"id": "mb-trash", "name": "Trash", "role": "trash", "parentId": None})
    for number in range(4):
        fake.create("Email", email(number))
    return fake


def read_succeeds(config: dict[str, Any]) -> bool:
    catalog = CatalogBuilder()
    for stream in STREAMS:
        configured = ConfiguredAirbyteStreamBuilder().with_name(stream).with_sync_mode(SyncMode.incremental)
        catalog = catalog.with_stream(configured.with_primary_key([["accountId"], ["id"]]))
    output = read(SourceJmap(), config, catalog.build(), None, expecting_exception=True)
    return not output.errors and {record.record.stream for record in output.records} >= {"mailboxes", "emails"}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_check_succeeds_exactly_where_a_read_of_every_stream_succeeds(
    server: FakeJmap, config: dict[str, Any], dialect: str
) -> None:
    override, read_works = DIALECTS[dialect]
    server.override = override
    config = {**config, "exclude_mailboxes": ["trash"]}
    status = SourceJmap().check(logger, config)
    assert read_succeeds(config) is read_works
    assert (status.status.value == "SUCCEEDED") is read_works, status.message
