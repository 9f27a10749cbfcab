"""A read holds one page as the JSON the server sent, so pages are sized to a byte budget as well as to
the server's maxObjectsInGet: big emails come in smaller pages, and pages grow back when emails get small.

The session advertises maxObjectsInGet 8; the budget is lowered to a few big emails a page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock

from source_jmap.jmap import paging

from .fake_jmap import FakeJmap, email
from .helpers import final_state, ids, read_stream

SERVER_LIMIT = 8
BIG_BODY = "x" * 5000
BUDGET = 20_000  # four big emails and the rest of the answer
BIG, SMALL = 12, 28


def numbered(number: int, big: bool) -> dict[str, Any]:
    message = email(number, received_at=f"2024-01-01T10:{number:02d}:00Z")
    return message | {"preview": BIG_BODY} if big else message


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJmap]:
    monkeypatch.setattr(paging, "PAGE_BYTES_BUDGET", BUDGET)
    with requests_mock.Mocker() as mocker:
        fake = FakeJmap(mocker, max_objects_in_get=SERVER_LIMIT)
        for number in range(BIG + SMALL):  # big emails first in receivedAt order, then small ones
            fake.create("Email", numbered(number, big=number < BIG))
        yield fake


def test_pages_of_big_emails_shrink_to_the_budget_then_grow_back_and_every_email_arrives_once(
    server: FakeJmap, config: dict[str, Any]
) -> None:
    # One page after another: with several workers, pairs go two at once and share what is left (test_import_pairs).
    output = read_stream(config | {"num_workers": 1}, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(BIG + SMALL)]
    limits = server.sent("Email/query", "limit")
    assert limits[0] == SERVER_LIMIT  # nothing is known of the emails before the first page
    big_pages = limits[1:limits.index(SERVER_LIMIT, 1)]
    assert big_pages and all(limit <= BUDGET // len(BIG_BODY) for limit in big_pages)
    assert limits[-1] == SERVER_LIMIT  # small emails: back to the server's limit, never beyond it
    assert max(limits) == SERVER_LIMIT


def test_changes_pages_of_big_emails_shrink_to_the_budget_and_every_change_arrives(
    server: FakeJmap, config: dict[str, Any]
) -> None:
    state = final_state(read_stream(config, "emails"))
    for number in range(BIG):
        server.update("Email", f"M{number:04d}", keywords={"$seen": True})
    server.requests.clear()
    output = read_stream(config, "emails", state=state)
    assert sorted(ids(output)) == [f"M{number:04d}" for number in range(BIG)]
    max_changes = server.sent("Email/changes", "maxChanges")
    assert max_changes[0] == SERVER_LIMIT
    assert all(size <= BUDGET // len(BIG_BODY) for size in max_changes[1:])
    assert final_state(output)["accounts"]["acc1"]["state"] == server.store("Email").state


def test_an_email_bigger_than_the_whole_budget_still_arrives_in_a_page_of_its_own(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]
) -> None:
    monkeypatch.setattr(paging, "PAGE_BYTES_BUDGET", 1000)
    with requests_mock.Mocker() as mocker:
        fake = FakeJmap(mocker, max_objects_in_get=SERVER_LIMIT)
        for number in range(10):
            fake.create("Email", numbered(number, big=True))
        output = read_stream(config, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(10)]
    # 8, 4 and 2 such emails come to more than four budgets: asked again in halves, their answers not held;
    # then one at a time, each page within the client's own cap; the total is reached: no empty page.
    assert fake.sent("Email/query", "limit") == [SERVER_LIMIT, 4, 2] + [1] * 10



def test_a_read_that_asks_for_the_next_page_while_it_holds_one_takes_smaller_pages_of_big_emails(
    server: FakeJmap, config: dict[str, Any],
) -> None:
    """Several workers read ahead (jmap/ahead.py), an import in pairs (jmap/pairs.py), holding three pages at once:
    each gets a third of the budget (test_limits.py says how much exactly); one worker holds one page."""
    pages: dict[int, int] = {}
    for workers in (1, 4):
        before = len(server.sent("Email/query", "limit"))
        assert len(ids(read_stream(config | {"num_workers": workers}, "emails"))) == BIG + SMALL
        pages[workers] = len(server.sent("Email/query", "limit")) - before
    assert pages[4] > pages[1]
