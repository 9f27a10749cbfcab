"""The sync engine on its own, without the Airbyte CDK: pages of an import, of changes, and of a whole read."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from typing import Any

import pytest

from source_jmap.jmap import (
    MAIL,
    ChangesPage,
    DataType,
    ImportPage,
    JmapClient,
    JmapServerError,
    Page,
    Query,
    ResumePoint,
    Sync,
    WholePage,
    read_all,
)
from source_jmap.jmap.auth import BasicCredentials

from .fake_jmap import SESSION_URL, FakeJmap, email

LOG = logging.getLogger("test")
EMAILS = DataType("Email", (MAIL,), ("id", "receivedAt", "threadId"), query=Query(
    filter=lambda after: {"after": after} if after else None,
    sort=({"property": "receivedAt", "isAscending": True},), sort_property="receivedAt",
))


def sync(data_type: DataType = EMAILS) -> Sync:
    return Sync(JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw")), data_type, "acc1", "test", LOG)


def saved(**members: Any) -> ResumePoint:
    """A resume point as a saved state holds it ("import")."""
    return ResumePoint.from_json(members, "import")


def consumed(pages: Any) -> list[tuple[list[str], Page]]:
    """Each page with the ids of its created objects, every iterator drained as a stream would."""
    return [([obj["id"] for obj in page.created], page) for page in pages]


def test_import_captures_the_state_before_the_first_page_and_anchors_each_page_after_the_last_id(
    fake: FakeJmap,
) -> None:
    for number in range(7):
        fake.create("Email", email(number))
    pages = consumed(sync().pages(None, None))
    assert [ids for ids, _ in pages] == [["M0000", "M0001", "M0002"], ["M0003", "M0004", "M0005"], ["M0006"]]
    assert {page.state for _, page in pages} == {"7"}
    assert [page.resume and page.resume.to_json() for _, page in pages] == [
        {"anchor": "M0002", "receivedAt": "2024-01-03T10:02:00Z"},
        {"anchor": "M0005", "receivedAt": "2024-01-06T10:05:00Z"},
        None,
    ]
    assert [page.total for _, page in pages] == [7, None, None]
    assert fake.method_calls()[0] == ["Email/get", "Email/query", "Email/get", "Email/changes", "Email/get"]
    assert fake.sent_calls("Email/changes")[0]["#sinceState"] == {"resultOf": "state", "name": "Email/get",
                                                                  "path": "/state"}
    assert [query.get("anchor") for query in fake.sent_calls("Email/query")] == [None, "M0002", "M0005"]


def test_import_resumes_after_its_anchor_with_the_state_it_captured(fake: FakeJmap) -> None:
    for number in range(5):
        fake.create("Email", email(number))
    fake.create("Email", email(5))  # after the import's state: left to the changes that follow the import
    pages = consumed(sync().pages("5", saved(anchor="M0002", receivedAt="2024-01-03T10:02:00Z")))
    assert [ids for ids, _ in pages] == [["M0003", "M0004"]]
    assert pages[0][1].state == "5"  # the state captured before the interrupted import, not a newer one
    assert fake.method_calls() == [["Email/query", "Email/get", "Email/changes", "Email/get"]]


def test_import_whose_anchor_was_destroyed_goes_on_from_the_last_sort_value(fake: FakeJmap) -> None:
    for number in range(5):
        fake.create("Email", email(number))
    fake.destroy("Email", "M0002")
    pages = consumed(sync().pages("5", saved(anchor="M0002", receivedAt="2024-01-03T10:02:00Z")))
    assert [ids for ids, _ in pages] == [["M0003", "M0004"]]
    assert [query.get("filter") for query in fake.sent_calls("Email/query")] == [
        None, {"after": "2024-01-03T10:01:59Z"},  # a second before: RFC 8621's "after" is strictly after
    ]


def test_changes_follow_has_more_changes_and_carry_created_updated_and_destroyed(fake: FakeJmap) -> None:
    for number in range(3):
        fake.create("Email", email(number))
    fake.create("Email", email(3))
    fake.update("Email", "M0000", keywords={"$seen": True})
    fake.destroy("Email", "M0001")
    fake.max_objects_in_get = 2
    pages = list(sync().pages("3", None))
    created = [obj["id"] for page in pages for obj in page.created]
    updated = [obj["id"] for page in pages for obj in page.updated]
    destroyed = [object_id for page in pages for object_id in page.destroyed]
    assert (created, updated, destroyed) == (["M0003"], ["M0000"], ["M0001"])
    assert [page.state for page in pages] == ["5", "6"]
    assert all(isinstance(page, ChangesPage) for page in pages)


def test_a_state_the_server_cannot_calculate_changes_from_starts_an_import(fake: FakeJmap) -> None:
    for number in range(2):
        fake.create("Email", email(number))
    fake.purged_before = 2
    pages = consumed(sync().pages("1", None))
    assert [ids for ids, _ in pages] == [["M0000", "M0001"]]
    assert isinstance(pages[0][1], ImportPage)


def test_changes_that_say_more_follow_without_a_newer_state_raise(fake: FakeJmap) -> None:
    fake.override = lambda name, arguments: (
        [name, {"oldState": "1", "newState": "1", "hasMoreChanges": True, "created": [], "updated": [],
                "destroyed": []}] if name == "Email/changes" else None
    )
    with pytest.raises(JmapServerError, match="not making progress"):
        list(sync().pages("1", None))


def test_a_type_without_changes_method_is_read_whole(fake: FakeJmap) -> None:
    fake.create("Identity", {"id": "i1", "email": "alice@jmap.test"})
    fake.override = lambda name, arguments: ["error", {"type": "unknownMethod"}] if name == "Identity/changes" else None
    identities = DataType("Identity", (MAIL,), query=None)
    pages = consumed(sync(identities).pages("1", None))
    assert [ids for ids, _ in pages] == [["i1"]]
    assert fake.method_calls()[-1] == ["Identity/get"]
    assert fake.sent_calls("Identity/get")[-1]["ids"] is None


def test_each_kind_of_read_yields_its_kind_of_page(fake: FakeJmap) -> None:
    """An import's pages say where it goes on, /changes pages what was destroyed, a whole read every id it brought;
    the last page of an import and a whole read end a read of every object, changes never."""
    for number in range(4):
        fake.create("Email", email(number))
    fake.create("Mailbox", {"id": "mb1", "name": "Inbox"})
    imported = list(sync().pages(None, None))
    assert [type(page) for page in imported] == [ImportPage, ImportPage]
    assert [page.ends_full_read for page in imported] == [False, True]
    fake.destroy("Email", "M0001")
    assert [(type(page), page.destroyed, page.ends_full_read) for page in sync().pages("4", None)] == [
        (ChangesPage, ["M0001"], False)]
    mailboxes = list(sync(DataType("Mailbox", (MAIL,), query=None)).pages(None, None))
    assert [(type(page), page.created_ids, page.ends_full_read) for page in mailboxes] == [(WholePage, ["mb1"], True)]


def test_a_type_found_through_another_types_query_keeps_query_order(fake: FakeJmap) -> None:
    for number in range(4):
        fake.create("Email", email(number))
        fake.create("Thread", {"id": f"T{number:04d}", "emailIds": [f"M{number:04d}"]})
    threads = DataType("Thread", (MAIL,), query=Query(collapse_threads=True, type="Email", via="threadId"))
    pages = consumed(sync(threads).pages(None, None))
    assert [ids for ids, _ in pages] == [["T0000", "T0001", "T0002"], ["T0003"]]
    assert fake.method_calls()[0] == ["Thread/get", "Email/query", "Email/get", "Thread/get", "Thread/changes",
                                      "Thread/get"]


def test_read_all_keeps_no_state_and_ends_at_the_total_without_an_empty_page(fake: FakeJmap) -> None:
    for number in range(4):
        fake.create("Mailbox", {"id": f"mb{number}", "name": f"Box {number}"})
    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
    mailboxes = DataType("Mailbox", (MAIL,), properties=("id",))
    assert [box["id"] for box in read_all(client, mailboxes, "acc1", "test", LOG)] == ["mb0", "mb1", "mb2", "mb3"]
    assert fake.method_calls() == [["Mailbox/query", "Mailbox/get"]] * 2


def test_read_all_whose_anchor_vanishes_yields_each_object_once(fake: FakeJmap) -> None:
    for number in range(4):
        fake.create("Mailbox", {"id": f"mb{number}", "name": f"Box {number}"})

    def destroy_the_anchor(name: str, arguments: dict[str, Any]) -> None:
        if name == "Mailbox/query" and arguments.get("anchor") == "mb2" and "mb2" in fake.store("Mailbox").objects:
            fake.destroy("Mailbox", "mb2")
        return None

    fake.override = destroy_the_anchor
    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
    mailboxes = DataType("Mailbox", (MAIL,), properties=("id",))
    assert [box["id"] for box in read_all(client, mailboxes, "acc1", "test", LOG)] == ["mb0", "mb1", "mb2", "mb3"]


def test_the_jmap_package_does_not_import_airbyte() -> None:
    code = "import sys, source_jmap.jmap; print(sorted({m.split('.')[0] for m in sys.modules} & {'airbyte_cdk'}))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_an_import_goes_on_past_a_short_page_until_the_total_is_reached(fake: FakeJmap) -> None:
    for number in range(7):
        fake.create("Email", email(number))
    fake.answer_short_query_pages(2)
    pages = consumed(sync().pages(None, None))
    assert [object_id for ids, _ in pages for object_id in ids] == [f"M{n:04d}" for n in range(7)]
    assert pages[-1][1].resume is None


def test_an_object_the_server_lists_but_cannot_get_is_asked_for_again(fake: FakeJmap) -> None:
    for number in range(3):
        fake.create("Email", email(number))
    asked: list[list[str]] = []

    def miss_m1_once(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Email/get" or not arguments["ids"] or "M0001" not in arguments["ids"] or page_ids_again(arguments):
            return None
        asked.append(arguments["ids"])
        if len(asked) > 1:
            return None
        [_, response] = fake._dispatch(name, {**arguments, "ids": [i for i in arguments["ids"] if i != "M0001"]})
        return [name, {**response, "notFound": ["M0001"]}]

    fake.override = miss_m1_once
    [(ids, page)] = consumed(sync().pages(None, None))
    assert sorted(ids) == ["M0000", "M0001", "M0002"] and page.count == 3
    assert asked[1] == ["M0001"]


def page_ids_again(arguments: dict[str, Any]) -> bool:
    """The import page's own ids asked again after its Foo/changes (ids only), not a get of its objects."""
    return arguments.get("properties") == ["id"]


def test_an_object_never_found_is_reported_with_a_count_and_not_counted_as_imported(
    fake: FakeJmap, caplog: pytest.LogCaptureFixture
) -> None:
    for number in range(3):
        fake.create("Email", email(number))

    def never_m1(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Email/get" or not arguments["ids"] or "M0001" not in arguments["ids"] or page_ids_again(arguments):
            return None
        [_, response] = fake._dispatch(name, {**arguments, "ids": [i for i in arguments["ids"] if i != "M0001"]})
        return [name, {**response, "notFound": ["M0001"]}]

    fake.override = never_m1
    with caplog.at_level(logging.WARNING, logger="test"):
        [(ids, page)] = consumed(sync().pages(None, None))
    assert ids == ["M0000", "M0002"] and page.count == 2
    assert "1 object(s) the server listed were not found by Email/get even when asked again" in caplog.text


def test_changes_that_go_back_to_a_state_they_gave_before_raise(fake: FakeJmap) -> None:
    flip = {"1": "2", "2": "1"}
    fake.override = lambda name, arguments: (
        [name, {"oldState": arguments["sinceState"], "newState": flip[arguments["sinceState"]],
                "hasMoreChanges": True, "created": [], "updated": [], "destroyed": []}]
        if name == "Email/changes" else None
    )
    with pytest.raises(JmapServerError, match="a state it gave before"):
        list(sync().pages("1", None))


def test_changes_that_bring_new_states_but_nothing_else_forever_raise(fake: FakeJmap) -> None:
    fake.override = lambda name, arguments: (
        [name, {"oldState": arguments["sinceState"], "newState": str(int(arguments["sinceState"]) + 1),
                "hasMoreChanges": True, "created": [], "updated": [], "destroyed": []}]
        if name == "Email/changes" else None
    )
    with pytest.raises(JmapServerError, match="gives no changes"):
        list(sync().pages("1", None))
    assert len(fake.requests) == 11  # ten empty pages are let through, the eleventh stops it


@pytest.mark.parametrize(("method", "broken", "message"), [
    ("Email/query", {"ids": None}, "Email/query with `ids` a NoneType"),
    ("Email/query", {"ids": "M1"}, "Email/query with `ids` a str"),
    ("Email/get", {"list": None}, "a /get response whose list is not an array"),
    ("Email/get", {"state": 7}, "Email/get with `state` a int"),
])
def test_a_result_missing_a_member_or_of_the_wrong_type_is_one_clear_error(
    fake: FakeJmap, method: str, broken: dict[str, Any], message: str
) -> None:
    fake.create("Email", email(1))

    def break_it(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != method:
            return None
        [_, response] = fake._dispatch(name, arguments)
        return [name, {**response, **broken}]

    fake.override = break_it
    with pytest.raises(JmapServerError, match=re.escape(message)):
        consumed(sync().pages(None, None))


def test_changes_missing_new_state_is_one_clear_error(fake: FakeJmap) -> None:
    fake.override = lambda name, arguments: (
        [name, {"hasMoreChanges": False, "created": [], "updated": [], "destroyed": []}]
        if name == "Email/changes" else None
    )
    with pytest.raises(JmapServerError, match="Email/changes with `newState` missing"):
        list(sync().pages("1", None))


def test_a_type_whose_objects_change_unlisted_is_read_whole_after_its_changes(fake: FakeJmap) -> None:
    fake.create("Mailbox", {"id": "mb1", "name": "Inbox", "totalThreads": 1})
    fake.create("Mailbox", {"id": "mb2", "name": "Archive", "totalThreads": 1})
    fake.stores["Mailbox"].objects["mb1"]["totalThreads"] = 2  # changed, and /changes does not say so
    mailboxes = DataType("Mailbox", (MAIL,), reread_after_changes=True)
    pages = list(sync(mailboxes).pages("2", None))
    assert [[obj["totalThreads"] for obj in page.created] for page in pages] == [[], [2, 1]]
    assert {page.state for page in pages} == {"2"}


def test_an_object_created_after_the_import_state_is_left_to_the_changes_that_follow(fake: FakeJmap) -> None:
    """RFC 8620 section 5.2: created and destroyed since a state, an object SHOULD be in none of the lists.
    Yielded by the import and destroyed before the next sync, it stayed in the destination for ever (the
    simulation's "left over" emails on such a server)."""
    for number in range(4):
        fake.create("Email", email(number))

    def arrives_after_the_first_page(name: str, arguments: dict[str, Any]) -> None:
        if name == "Email/query" and arguments.get("anchor") == "M0002" and "M0009" not in fake.store("Email").objects:
            fake.create("Email", email(9))

    fake.override = arrives_after_the_first_page
    pages = consumed(sync().pages(None, None))
    assert [object_id for ids, _ in pages for object_id in ids] == ["M0000", "M0001", "M0002", "M0003"]
    changes = list(sync().pages(pages[-1][1].state, None))
    assert [obj["id"] for page in changes for obj in page.created] == ["M0009"]  # while it lasts
