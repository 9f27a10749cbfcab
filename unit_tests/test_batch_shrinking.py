"""A server that refuses a page for its size gets smaller pages, and the sync goes on without a gap.

The session advertises maxObjectsInGet 8 but the server refuses any Email/get of more than 3 ids
with `requestTooLarge`, as a server whose real limit is below its advertised one would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock

from .fake_jmap import FakeJmap, email
from .helpers import final_state, ids, read_stream

ADVERTISED = 8
ACCEPTED = 3
# Pages one at a time, so that the sizes asked are those of one page after another (with several workers, an import
# asks for two at once: test_import_pairs.py).
ONE_AT_A_TIME = {"num_workers": 1}



def refuse_large_gets(name: str, arguments: dict[str, Any]) -> list[Any] | None:
    if name == "Email/get" and len(arguments["ids"] or []) > ACCEPTED:
        return ["error", {"type": "requestTooLarge"}]
    return None


@pytest.fixture
def strict_server() -> Iterator[FakeJmap]:
    with requests_mock.Mocker() as mocker:
        fake = FakeJmap(mocker, max_objects_in_get=ADVERTISED, override=refuse_large_gets)
        for number in range(20):
            fake.create("Email", email(number))
        yield fake


def test_import_page_refused_for_its_size_is_asked_again_smaller_and_every_email_arrives(
    strict_server: FakeJmap, config: dict[str, Any]
) -> None:
    output = read_stream(config | ONE_AT_A_TIME, "emails")
    assert sorted(ids(output)) == sorted(f"M{number:04d}" for number in range(20))
    assert len(ids(output)) == 20
    assert strict_server.sent("Email/query", "limit") == [8, 4] + [2] * 10  # the total is reached: no empty page


def test_changes_page_refused_for_its_size_is_asked_again_smaller_and_every_change_arrives(
    strict_server: FakeJmap, config: dict[str, Any]
) -> None:
    state = final_state(read_stream(config, "emails"))
    for number in range(10):
        strict_server.update("Email", f"M{number:04d}", keywords={"$seen": True})
    strict_server.requests.clear()
    output = read_stream(config, "emails", state=state)
    assert sorted(ids(output)) == [f"M{number:04d}" for number in range(10)]
    assert strict_server.sent("Email/changes", "maxChanges") == [8, 4] + [2] * 5
    assert final_state(output)["accounts"]["acc1"]["state"] == strict_server.store("Email").state
