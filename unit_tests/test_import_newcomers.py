"""An import meets objects created after the state it captured; one of them destroyed later must not stay in
the destination. `/changes` since the captured state leaves such an object out altogether (created and
destroyed since the state: RFC 8620 section 5.2 allows it, Cyrus and the fake server do it), so the import
must leave those objects to the changes after it.
"""

from __future__ import annotations

from typing import Any

import pytest

from source_jmap.jmap import MAIL, ChangesPage, DataType, Page, Query

from .fake_jmap import FakeJmap, email
from .test_sync_engine import EMAILS, sync

THREADS = DataType("Thread", (MAIL,), query=Query(collapse_threads=True, type="Email", via="threadId"))


def apply(destination: dict[str, bool], page: Page) -> None:
    """A deduplicating destination: what a page's records leave in it (ids only)."""
    for obj in page.keep_objects():
        destination[obj["id"]] = True
    for object_id in page.destroyed if isinstance(page, ChangesPage) else ():
        destination.pop(object_id, None)


def create_mail(fake: FakeJmap, number: int) -> None:
    fake.create("Email", email(number))
    fake.create("Thread", {"id": f"T{number:04d}", "emailIds": [f"M{number:04d}"]})


def destroy_mail(fake: FakeJmap, number: int) -> None:
    fake.destroy("Email", f"M{number:04d}")
    fake.destroy("Thread", f"T{number:04d}")


@pytest.mark.parametrize("data_type", [EMAILS, THREADS], ids=["emails", "threads"])
def test_an_object_created_during_a_killed_import_and_destroyed_before_the_next_sync_leaves_the_destination(
    fake: FakeJmap, data_type: DataType
) -> None:
    for number in range(4):
        create_mail(fake, number)
    destination: dict[str, bool] = {}
    first = next(sync(data_type).pages(None, None))  # the run is killed after its first page
    apply(destination, first)
    create_mail(fake, 4)  # new mail while the import is under way: after its captured state
    for page in sync(data_type).pages(first.state, first.resume):  # the import resumes and finishes
        apply(destination, page)
        state = page.state
    destroy_mail(fake, 4)  # the new mail is expunged, its thread with it
    for page in sync(data_type).pages(state, None):
        apply(destination, page)
    assert sorted(destination) == sorted(fake.store(data_type.name).objects)


def test_an_object_created_during_an_import_and_still_there_comes_with_the_changes_after_it(fake: FakeJmap) -> None:
    for number in range(4):
        create_mail(fake, number)
    pages = sync().pages(None, None)
    first = next(pages)
    create_mail(fake, 4)
    imported = [obj["id"] for page in [first, *pages] for obj in page.created]
    changes = [obj["id"] for page in sync().pages(first.state, None) for obj in page.created]
    assert (imported, changes) == (["M0000", "M0001", "M0002", "M0003"], ["M0004"])


def test_an_import_page_asks_the_changes_since_the_captured_state_then_its_ids_again_after_its_get(
    fake: FakeJmap,
) -> None:
    for number in range(4):
        create_mail(fake, number)
    list(sync(THREADS).pages(None, None))
    assert fake.method_calls() == [
        ["Thread/get", "Email/query", "Email/get", "Thread/get", "Thread/changes", "Thread/get"],
        ["Email/query", "Email/get", "Thread/get", "Thread/changes", "Thread/get"]]
    assert [call["properties"] for call in fake.sent_calls("Thread/get") if call.get("properties")] == [["id"]] * 2
    assert [call.get("sinceState", call.get("#sinceState")) for call in fake.sent_calls("Thread/changes")] == [
        {"resultOf": "state", "name": "Thread/get", "path": "/state"}, "4"]


def test_an_import_on_a_server_without_changes_delivers_every_object(fake: FakeJmap) -> None:
    def no_changes(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        return ["error", {"type": "unknownMethod"}] if name.endswith("/changes") else None

    fake.override = no_changes
    for number in range(4):
        create_mail(fake, number)
    first = next(sync().pages(None, None))
    create_mail(fake, 4)
    ids = [obj["id"] for page in [first, *sync().pages(first.state, first.resume)] for obj in page.created]
    assert ids == ["M0000", "M0001", "M0002", "M0003", "M0004"]


@pytest.mark.parametrize("data_type", [EMAILS, THREADS], ids=["emails", "threads"])
def test_an_object_created_and_destroyed_within_an_import_pages_request_is_left_out(
    fake: FakeJmap, data_type: DataType
) -> None:
    """Created after the captured state and seen by the page's query and get, destroyed before its Foo/changes:
    that call lists it neither as created nor destroyed, and no /changes after the import ever will (simulation
    seed issue18-3013: emitted, and left in the destination). The page's ids asked again leave it out."""
    for number in range(2):
        create_mail(fake, number)

    came: list[int] = []

    def come_and_go(name: str, arguments: dict[str, Any]) -> None:
        if name == "Email/query" and not came:
            came.append(9)
            create_mail(fake, 9)
        elif name.endswith("/changes") and "M0009" in fake.store("Email").objects:
            destroy_mail(fake, 9)

    fake.override = come_and_go
    imported = [obj["id"] for page in sync(data_type).pages(None, None) for obj in page.created]
    assert imported == {"Email": ["M0000", "M0001"], "Thread": ["T0000", "T0001"]}[data_type.name]
