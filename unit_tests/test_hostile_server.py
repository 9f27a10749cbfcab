"""A server that misbehaves on purpose, seen from a whole sync (issue 13, items 4, 5, 11, 12 and 15).

Each case ends in every email or in one clear failure line, and in bounded time: before the sync engine
guarded against them, the first two lost emails with exit 0 and the next three looped forever.
"""

from __future__ import annotations

from typing import Any

import pytest

from .fake_jmap import FakeJmap, email
from .helpers import final_state, ids, read_stream


def seed(fake: FakeJmap, count: int = 7) -> None:
    for number in range(count):
        fake.create("Email", email(number))


def failure(output: Any) -> str:
    """The message of the read's one error, its failed stream's."""
    [error] = output.errors
    return str(error.trace.error.message)


def test_a_server_that_answers_short_pages_mid_way_still_gives_every_email(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    seed(fake)
    fake.answer_short_query_pages(2)
    assert ids(read_stream(config, "emails")) == [f"M{number:04d}" for number in range(7)]


def test_an_email_the_server_could_not_get_the_first_time_still_arrives(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    seed(fake, 3)
    misses = []

    def miss_m1_once(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Email/get" or not arguments["ids"] or "M0001" not in arguments["ids"] or misses:
            return None
        misses.append(name)
        [_, response] = fake._dispatch(name, {**arguments, "ids": [i for i in arguments["ids"] if i != "M0001"]})
        return [name, {**response, "notFound": ["M0001"]}]

    fake.override = miss_m1_once
    assert sorted(ids(read_stream(config, "emails"))) == ["M0000", "M0001", "M0002"]


def test_changes_that_go_round_between_two_states_end_in_one_line(fake: FakeJmap, config: dict[str, Any]) -> None:
    seed(fake, 1)
    state = final_state(read_stream(config, "emails"))
    fake.override = lambda name, arguments: (
        [name, {"oldState": arguments["sinceState"], "newState": "B" if arguments["sinceState"] != "B" else "A",
                "hasMoreChanges": True, "created": [], "updated": [], "destroyed": []}]
        if name == "Email/changes" else None
    )
    output = read_stream(config, "emails", state=state, expecting_exception=True)
    assert "not making progress" in failure(output)
    assert len(fake.requests) < 10


def test_a_server_that_ignores_the_anchor_gives_every_email_once_in_bounded_requests(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Issue 18 item 5: this ended in "ignores `anchor`" after 3 emails, so such a server could never be read."""
    seed(fake)
    fake.override = lambda name, arguments: (
        fake._dispatch(name, {key: value for key, value in arguments.items() if key not in ("anchor", "anchorOffset")})
        if name == "Email/query" else None
    )
    output = read_stream(config, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(7)]
    assert len(fake.requests) < 10


@pytest.mark.parametrize(("member", "value", "kind"), [("ids", None, "NoneType"), ("total", "many", "str")])
def test_a_query_result_with_a_member_of_the_wrong_type_ends_in_one_line_naming_it(
    fake: FakeJmap, config: dict[str, Any], member: str, value: Any, kind: str
) -> None:
    seed(fake, 1)

    def break_it(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Email/query":
            return None
        [_, response] = fake._dispatch(name, arguments)
        return [name, {**response, member: value}]

    fake.override = break_it
    output = read_stream(config, "emails", expecting_exception=True)
    assert f"Email/query with `{member}` a {kind}" in failure(output)
    assert "Traceback" not in failure(output)
