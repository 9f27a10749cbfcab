"""An import reaches the end of its query whatever becomes of its anchors (issue 18, items 1 and 5).

An anchor can be destroyed or moved out of the selection between a kill and the resume, a server can
answer anchorNotFound to every anchor, ignore anchors, or refuse them. Whatever replaces the anchor (a
receivedAt bound, a position) must still reach the query's end: the objects after it did not change, so
no later /changes would bring them. A server that makes no progress at all ends in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from source_jmap.jmap import MAIL, DataType, JmapServerError, Query

from .fake_jmap import FakeJmap, email
from .test_sync_engine import EMAILS, consumed, saved, sync

TRASH = "mb-trash"
# Selected emails: every mailbox but Trash, as `exclude_mailboxes: ["Trash"]` asks.
NOT_IN_TRASH = DataType("Email", (MAIL,), ("id", "receivedAt", "mailboxIds"), query=Query(
    filter=lambda after: {"operator": "AND", "conditions": [
        {"inMailboxOtherThan": [TRASH]}, *([{"after": after}] if after else [])]},
    sort=({"property": "receivedAt", "isAscending": True},), sort_property="receivedAt",
))
# A type whose objects carry no sort value (threads): a lost anchor has nothing to go on from but the start.
UNSORTED = DataType("Email", (MAIL,), ("id",), query=Query(sort=({"property": "receivedAt", "isAscending": True},)))
ANCHOR_REFUSED = ["error", {"type": "invalidArguments", "description": (
    "The following parameter anchor is syntactically valid, but is not supported by the server.")}]


def emails(fake: FakeJmap, count: int, same_second_every: int = 1) -> list[str]:
    """`count` emails; every `same_second_every` in a row share one receivedAt (bulk imports give ties)."""
    for number in range(count):
        group = number // same_second_every
        fake.create("Email", email(number, received_at=f"2024-01-{1 + group // 24:02d}T{group % 24:02d}:00:00Z"))
    return [f"M{number:04d}" for number in range(count)]


def imported(pages: Any) -> list[str]:
    return [object_id for ids, _ in consumed(pages) for object_id in ids]


def bounded(fake: FakeJmap, answer: Callable[[str, dict[str, Any]], list[Any] | None], most: int = 200) -> None:
    """Answer by `answer`, and fail the test rather than hang when the client sends more than `most` requests."""
    def counting(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if len(fake.requests) > most:
            raise AssertionError(f"more than {most} requests: the client does not stop")
        return answer(name, arguments)

    fake.override = counting


def test_a_resumed_import_whose_anchor_was_destroyed_reaches_the_end_of_the_query(fake: FakeJmap) -> None:
    every = emails(fake, 20)
    fake.destroy("Email", "M0005")
    resumed = imported(sync().pages("20", saved(anchor="M0005", receivedAt="2024-01-01T05:00:00Z")))
    assert set(every[6:]) <= set(resumed)


def test_a_resumed_import_whose_anchor_left_the_selection_reaches_the_end_of_the_query(fake: FakeJmap) -> None:
    every = emails(fake, 20)
    fake.update("Email", "M0005", mailboxIds={TRASH: True})
    resumed = imported(sync(NOT_IN_TRASH).pages("20", saved(anchor="M0005", receivedAt="2024-01-01T05:00:00Z")))
    assert set(every[6:]) <= set(resumed) and "M0005" not in resumed


def test_an_import_reaches_the_end_when_older_mail_enters_the_query_mid_import(fake: FakeJmap) -> None:
    every = emails(fake, 9)

    def older_mail_arrives_after_the_first_page(name: str, arguments: dict[str, Any]) -> None:
        if name == "Email/query" and arguments.get("anchor") == "M0002" and "M0100" not in fake.store("Email").objects:
            for number in (100, 101, 102):  # appended with an old date, or moved back from Trash
                fake.create("Email", email(number, received_at="2023-06-01T10:00:00Z"))

    fake.override = older_mail_arrives_after_the_first_page
    assert set(every) <= set(imported(sync().pages(None, None)))


def test_a_lost_anchor_goes_on_from_just_before_the_last_sort_value_where_after_is_strict(fake: FakeJmap) -> None:
    """RFC 8621 says "after" this date-time: a bound at the last value itself would skip its other emails."""
    fake.strict_after = True
    every = emails(fake, 12, same_second_every=4)
    fake.destroy("Email", "M0005")
    resumed = imported(sync().pages("12", saved(anchor="M0005", receivedAt="2024-01-01T01:00:00Z")))
    assert set(every[6:]) <= set(resumed)


def test_an_import_whose_every_anchor_is_not_found_still_brings_every_email(fake: FakeJmap) -> None:
    every = emails(fake, 30)
    bounded(fake, lambda name, arguments: (
        ["error", {"type": "anchorNotFound"}] if name == "Email/query" and "anchor" in arguments else None))
    assert set(imported(sync().pages(None, None))) == set(every)
    assert len(fake.requests) <= 2 * 30 // 3 + 5


def test_an_import_of_objects_without_sort_value_whose_every_anchor_is_not_found_brings_every_object(
    fake: FakeJmap,
) -> None:
    every = emails(fake, 30)
    bounded(fake, lambda name, arguments: (
        ["error", {"type": "anchorNotFound"}] if name == "Email/query" and "anchor" in arguments else None))
    assert set(imported(sync(UNSORTED).pages("30", saved(anchor="M0011")))) >= set(every[12:])
    assert len(fake.requests) <= 2 * 30 // 3 + 5


def test_a_server_that_answers_anchor_not_found_without_an_anchor_stops_with_one_line(fake: FakeJmap) -> None:
    emails(fake, 7)
    bounded(fake, lambda name, arguments: ["error", {"type": "anchorNotFound"}] if name == "Email/query" else None)
    with pytest.raises(JmapServerError, match="anchorNotFound to a query without an anchor"):
        consumed(sync(UNSORTED).pages("7", saved(anchor="M0002")))


def test_an_import_on_a_server_that_ignores_anchors_brings_every_email_once(fake: FakeJmap) -> None:
    every = emails(fake, 10)
    bounded(fake, lambda name, arguments: fake._dispatch(name, {
        key: value for key, value in arguments.items() if key not in ("anchor", "anchorOffset")
    }) if name == "Email/query" else None)
    assert imported(sync().pages(None, None)) == every


def test_an_import_on_a_server_that_ignores_anchors_and_positions_stops_with_one_line(fake: FakeJmap) -> None:
    emails(fake, 10, same_second_every=10)  # one receivedAt: only a position gets past the first page
    bounded(fake, lambda name, arguments: fake._dispatch(name, {
        key: value for key, value in arguments.items() if key not in ("anchor", "anchorOffset", "position")
    }) if name == "Email/query" else None)
    with pytest.raises(JmapServerError, match="ignores `position` and is not making progress"):
        consumed(sync().pages(None, None))


def test_pages_without_anchors_lose_nothing_where_after_is_strict_and_emails_share_a_receivedat(
    fake: FakeJmap,
) -> None:
    fake.strict_after = True
    every = emails(fake, 14, same_second_every=5)
    bounded(fake, lambda name, arguments: ANCHOR_REFUSED if name == "Email/query" and "anchor" in arguments else None)
    assert imported(sync().pages(None, None)) == every


def test_pages_without_anchors_lose_nothing_when_an_email_before_the_position_is_destroyed(fake: FakeJmap) -> None:
    every = emails(fake, 14, same_second_every=7)

    def refuse_anchors_and_destroy_m1_after_the_second_page(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name == "Email/query" and "anchor" in arguments:
            return ANCHOR_REFUSED
        if name == "Email/query" and arguments.get("position", 0) >= 2 and "M0001" in fake.store("Email").objects:
            fake.destroy("Email", "M0001")  # the page after M0002 by position alone would skip M0003
        return None

    bounded(fake, refuse_anchors_and_destroy_m1_after_the_second_page)
    assert set(imported(sync().pages(None, None))) == set(every)  # M0001 came on the first page


def test_an_import_without_anchors_resumed_after_a_kill_reaches_the_end(fake: FakeJmap) -> None:
    every = emails(fake, 14, same_second_every=5)
    bounded(fake, lambda name, arguments: ANCHOR_REFUSED if name == "Email/query" and "anchor" in arguments else None)
    pages = consumed(sync().pages(None, None))
    for killed_after in range(len(pages) - 1):
        before = {object_id for ids, _ in pages[:killed_after + 1] for object_id in ids}
        resume = pages[killed_after][1].resume
        assert before | set(imported(sync().pages("14", resume))) == set(every), f"killed after page {killed_after}"


def test_the_first_page_of_a_resumed_import_counts_what_is_left(fake: FakeJmap) -> None:
    emails(fake, 20)
    [(_, first), *_] = consumed(sync(EMAILS).pages("20", saved(anchor="M0005", receivedAt="2024-01-01T05:00:00Z")))
    assert first.total == 14


def test_pages_without_anchors_get_past_emails_received_within_one_second(fake: FakeJmap) -> None:
    """A bound is whole seconds: a window from just before 10:00:00.700 is the one from just before .800."""
    for number in range(8):
        fake.create("Email", email(number, received_at=f"2024-01-01T10:00:00.{number + 1}00Z"))
    bounded(fake, lambda name, arguments: ANCHOR_REFUSED if name == "Email/query" and "anchor" in arguments else None)
    assert imported(sync().pages(None, None)) == [f"M{number:04d}" for number in range(8)]


@pytest.mark.parametrize("point", [{"position": 0, "follows": "M0003"}, {"position": 4, "follows": 7}])
def test_a_saved_window_whose_follows_cannot_be_used_pages_from_its_position(
    fake: FakeJmap, point: dict[str, Any]
) -> None:
    """A position of 0 that follows an id would ask for position -1: from the end of the results (RFC 8620 5.5)."""
    every = emails(fake, 10)
    assert set(every[point["position"]:]) <= set(imported(sync().pages("10", saved(**point))))
    assert all(query["position"] >= 0 for query in fake.sent_calls("Email/query"))


def test_pages_of_one_without_anchors_bring_every_email(fake: FakeJmap) -> None:
    """A page that starts at the id it follows holds two: a server whose maxObjectsInGet is 1 refused it."""
    fake.max_objects_in_get = 1
    every = emails(fake, 6, same_second_every=3)
    bounded(fake, lambda name, arguments: ANCHOR_REFUSED if name == "Email/query" and "anchor" in arguments else None)
    assert imported(sync().pages(None, None)) == every
