"""The resume point, the engine's contract with the saved state: read as every version wrote it, written back the same.

0.2.0 (c0834eb) wrote `anchor` with the sort value (`receivedAt`), `after` (the sort value itself) and `position`;
0.3 writes `after` a second before the sort value and `follows` as well. Whatever the state holds is checked once,
by `ResumePoint.from_json`, which says in one line what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from source_jmap.jmap import InvalidResumePoint, ResumePoint
from source_jmap.streams.state import AccountStates

from .fake_jmap import FakeJmap, email
from .test_sync_engine import EMAILS, sync

WRITTEN = {
    "an import that starts": {},
    "by anchor, 0.2.0 and after": {"anchor": "M0005", "receivedAt": "2024-01-01T05:00:00Z"},
    "by anchor, an email without receivedAt": {"anchor": "M0005", "receivedAt": None},
    "by anchor, a type without sort value (threads)": {"anchor": "T0005"},
    "0.2.0, its anchor lost": {"after": "2024-01-01T05:00:00Z"},
    "0.2.0, its anchor lost on an email without receivedAt": {"after": None},
    "0.2.0, without anchors, from the start": {"position": 3},
    "0.2.0, without anchors": {"after": "2024-01-01T05:00:00Z", "position": 3},
    "0.2.0, without anchors, after an email without receivedAt": {"after": None, "position": 2},
    "by windows, a window's start": {"after": "2024-01-01T04:59:59Z", "position": 0},
    "by windows, past the start": {"after": "2024-01-01T04:59:59Z", "position": 40, "follows": "M0044"},
    "by anchor, a receivedAt with its offset": {"anchor": "M1", "receivedAt": "2024-01-01T10:00:00.25+02:00"},
}


@pytest.mark.parametrize("point", WRITTEN.values(), ids=WRITTEN.keys())
def test_a_saved_resume_point_is_written_back_byte_for_byte(point: dict[str, Any]) -> None:
    assert json.dumps(ResumePoint.from_json(point, "import").to_json()) == json.dumps(point)


@pytest.mark.parametrize("point", WRITTEN.values(), ids=WRITTEN.keys())
def test_a_saved_state_is_written_back_byte_for_byte(point: dict[str, Any]) -> None:
    saved = {"accounts": {"acc1": {"state": "5", "import": point, "selection": {"start_date": None}}}}
    states = AccountStates()
    states.set_initial_state(json.loads(json.dumps(saved)))
    account_state = states.get("acc1")
    assert account_state is not None
    states.put("acc1", account_state)
    assert json.dumps(states.get_stream_state()) == json.dumps(saved)


MALFORMED = {
    "not an object": (["M1"], "import is not an object"),
    "an anchor of 17": ({"anchor": 17}, "import/anchor is not a string"),
    "a receivedAt of garbage": ({"anchor": "M1", "receivedAt": "garbage"},
                                "import/receivedAt is not a date-time with its offset, such as 2024-01-01T00:00:00Z"),
    "an after without its offset": ({"after": "2024-01-01T00:00"},
                                    "import/after is not a date-time with its offset, such as 2024-01-01T00:00:00Z"),
    "a position past an UnsignedInt": ({"position": 2**53}, "import/position is not a whole number from 0 to "
                                                            "9007199254740991"),
    "a position of true": ({"position": True}, "import/position is not a whole number from 0 to 9007199254740991"),
    "two sort values": ({"anchor": "M1", "receivedAt": None, "sentAt": None},
                        "import has 2 sort values (receivedAt, sentAt); one at most"),
}


@pytest.mark.parametrize(("point", "problem"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_resume_point_is_refused_in_one_line(point: Any, problem: str) -> None:
    with pytest.raises(InvalidResumePoint) as refused:
        ResumePoint.from_json(point, "import")
    assert str(refused.value) == problem


def test_a_follows_that_is_no_id_is_left_out_and_the_page_goes_from_its_position() -> None:
    point = ResumePoint.from_json({"after": None, "position": 4, "follows": 7}, "import")
    assert point.following is None and point.to_json() == {"after": None, "position": 4}


def test_a_sort_value_the_next_run_would_refuse_is_not_kept_after_a_page() -> None:
    """A receivedAt without its offset from the server would make the state unreadable: the anchor alone goes on."""
    assert ResumePoint.after_page("receivedAt", "M1", {"id": "M1", "receivedAt": "2024-01-01T00:00:00"}).to_json() == {
        "anchor": "M1"}
    assert ResumePoint.after_page("receivedAt", "M1", {"id": "M1", "receivedAt": None}).to_json() == {
        "anchor": "M1", "receivedAt": None}


def test_every_point_an_import_writes_is_read_back_as_itself(fake: FakeJmap) -> None:
    for number in range(7):
        fake.create("Email", email(number))
    points = [page.resume for page in sync(EMAILS).pages(None, None)]
    assert points[-1] is None
    for point in points[:-1]:
        assert point is not None and ResumePoint.from_json(point.to_json(), "import") == point
