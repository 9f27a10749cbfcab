"""`/changes` ends (issue 18, items 4 and 9): a server that goes round is stopped with one line in bounded
requests, a long run of real changes is not, and changes the server cannot list are imported again."""

from __future__ import annotations

from typing import Any

import pytest

from source_jmap.jmap import ImportPage, JmapServerError

from .fake_jmap import FakeJmap, email
from .test_import_anchors import bounded
from .test_sync_engine import consumed, sync


def test_changes_with_fresh_states_that_list_the_same_ids_again_and_again_stop_with_one_line(fake: FakeJmap) -> None:
    for number in range(5):
        fake.create("Email", email(number))

    def one_of_five_again_and_again(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Email/changes":
            return None
        since = int(arguments["sinceState"])
        return [name, {"oldState": str(since), "newState": str(since + 1), "hasMoreChanges": True,
                       "created": [f"M{since % 5:04d}"], "updated": [], "destroyed": []}]

    bounded(fake, one_of_five_again_and_again, most=100)
    with pytest.raises(JmapServerError, match="only ids it listed before"):
        list(sync().pages("1", None))


def test_a_long_run_of_real_changes_is_followed_to_its_end(fake: FakeJmap) -> None:
    """20,000 changes at 50 a page: 400 pages, each with ids the run had not listed. The bound counts pages
    without a new id, not pages, so 100,000 changes (2,000 pages, 10 s through the fake) pass as these do."""
    fake.max_objects_in_get = 50
    store = fake.store("Email")
    for number in range(20_000):  # as fake.create does, without a copy of each email
        store.objects[f"M{number:06d}"] = {"id": f"M{number:06d}", "receivedAt": "2024-01-01T00:00:00Z"}
        store.log.append(("created", f"M{number:06d}"))
    pages = list(sync().pages("0", None))
    assert len(pages) == 400 and pages[-1].state == "20000"


def test_too_many_changes_imports_the_stream_again(fake: FakeJmap) -> None:
    for number in range(4):
        fake.create("Email", email(number))
    fake.override = lambda name, arguments: (
        ["error", {"type": "tooManyChanges"}] if name == "Email/changes" else None)
    pages = consumed(sync().pages("1", None))
    assert [object_id for ids, _ in pages for object_id in ids] == ["M0000", "M0001", "M0002", "M0003"]
    assert all(isinstance(page, ImportPage) for _, page in pages)
