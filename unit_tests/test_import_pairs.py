"""An import read by several workers asks for its pages by anchor two at once (source_jmap/jmap/pairs.py): the second
from the same anchor, starting at the first's last email, used only when that email is where it should be."""

from __future__ import annotations

import gc
import json
import time
from typing import Any

import pytest

from source_jmap.jmap import pairs
from source_jmap.jmap.responses import MethodResponses
from source_jmap.jmap.transport import HttpTransport

from .fake_jmap import FakeJmap, email
from .helpers import ids, read_stream

SEVERAL = {"num_workers": 4}


def seed(fake: FakeJmap, count: int, page: int) -> None:
    fake.max_objects_in_get = page
    for number in range(count):
        fake.create("Email", email(number))


def queries(fake: FakeJmap) -> list[tuple[str | None, int | None, int | None, int | None]]:
    """(anchor, anchorOffset, position, limit) of every Email/query, in the order the server took them."""
    return [(query.get("anchor"), query.get("anchorOffset"), query.get("position"), query.get("limit"))
            for query in fake.sent_calls("Email/query")]


def is_second(name: str, arguments: dict[str, Any]) -> bool:
    return name == "Email/query" and arguments.get("anchorOffset", 1) > 1


def test_an_import_read_by_several_workers_asks_for_two_pages_at_once_and_every_email_arrives_once_in_order(
    fake: FakeJmap, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed(fake, 10, page=4)
    under_way: dict[int, tuple[float, float]] = {}  # anchorOffset: when its request was sent, and answered
    exchange = HttpTransport.exchange

    def timed(transport: HttpTransport, *args: Any, **kwargs: Any) -> Any:
        calls = json.loads(kwargs.get("data") or "{}").get("methodCalls", [])
        offset = next((arguments.get("anchorOffset") for name, arguments, _ in calls if name == "Email/query"), None)
        sent = time.monotonic()
        try:
            return exchange(transport, *args, **kwargs)
        finally:
            if offset is not None:
                under_way[offset] = (sent, time.monotonic())

    def slow_query(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        time.sleep(0.1 if name == "Email/query" else 0)  # the mock answers one request at a time
        return None

    monkeypatch.setattr(HttpTransport, "exchange", timed)
    fake.override = slow_query
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(10)]
    # The first page alone (it captures the state and brings the count), then the 6 left shared evenly at once:
    # M0004-M0006 and, from M0006 on, M0007-M0009.
    assert queries(fake)[0] == (None, None, 0, 4)
    assert sorted(queries(fake)[1:]) == [("M0003", 1, None, 3), ("M0003", 3, None, 4)]  # in either order
    (first_sent, first_answered), (second_sent, second_answered) = under_way[1], under_way[3]
    assert second_sent < first_answered and first_sent < second_answered


def test_pairs_are_of_full_pages_until_the_last_which_shares_what_is_left_evenly(
    fake: FakeJmap, config: dict[str, Any],
) -> None:
    seed(fake, 20, page=4)
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(20)]
    assert queries(fake)[0] == (None, None, 0, 4)  # leaves 16
    assert sorted(queries(fake)[1:3]) == [("M0003", 1, None, 4), ("M0003", 4, None, 4)]  # M0004-M0010: leaves 9
    assert sorted(queries(fake)[3:5]) == [("M0010", 1, None, 4), ("M0010", 4, None, 4)]  # M0011-M0017: leaves 2
    assert queries(fake)[5:] == [("M0017", 1, None, 4)]


def test_the_second_page_of_a_pair_that_does_not_start_at_the_first_pages_last_email_is_thrown_away(
    fake: FakeJmap, config: dict[str, Any],
) -> None:
    """As when an email before it was destroyed between the two requests: the page starts one email later."""
    seed(fake, 10, page=4)

    def one_email_gone(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if is_second(name, arguments):
            return fake._dispatch(name, arguments | {"anchorOffset": arguments["anchorOffset"] + 1})
        return None

    fake.override = one_email_gone
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(10)]  # each once, from its own page's request
    assert queries(fake)[-1] == ("M0006", 1, None, 4)


@pytest.mark.parametrize("refusal", [["error", {"type": "serverFail"}], ["error", {"type": "anchorNotFound"}]])
def test_a_second_page_the_server_refuses_is_thrown_away_and_the_import_asks_for_it_itself(
    fake: FakeJmap, config: dict[str, Any], refusal: list[Any],
) -> None:
    seed(fake, 10, page=4)
    fake.override = lambda name, arguments: refusal if is_second(name, arguments) else None
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(10)]
    assert queries(fake)[-1] == ("M0006", 1, None, 4)


def test_pages_of_one_email_are_not_asked_in_pairs_and_every_email_arrives(
    fake: FakeJmap, config: dict[str, Any],
) -> None:
    """The second page of a pair starts at the first's last email: of one email, it would be the first page again
    (a first version ended the import there, and lost the rest: simulation seed ci-w4-81)."""
    seed(fake, 5, page=1)
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(5)]
    assert queries(fake) == [(None, None, 0, 1)] + [(f"M{number:04d}", 1, None, 1) for number in range(4)]


def test_a_pair_is_asked_only_while_the_servers_count_leaves_more_than_the_next_page(
    fake: FakeJmap, config: dict[str, Any],
) -> None:
    seed(fake, 8, page=4)  # the first page leaves 4: the next one brings them all
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(8)]
    assert queries(fake) == [(None, None, 0, 4), ("M0003", 1, None, 4)]


def test_one_worker_asks_for_one_page_at_a_time(fake: FakeJmap, config: dict[str, Any]) -> None:
    """One worker keeps its requests in the order of the output, which the simulation's replay of a seed needs."""
    seed(fake, 10, page=4)
    output = read_stream(config | {"num_workers": 1}, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(10)]
    assert queries(fake) == [(None, None, 0, 4), ("M0003", 1, None, 4), ("M0007", 1, None, 4)]


def test_a_second_page_whose_email_changes_failed_is_thrown_away_and_newcomers_are_still_tracked(
    fake: FakeJmap, config: dict[str, Any],
) -> None:
    """Used, it would stop the import's Email/changes (newcomers.py): an email created and destroyed during the
    import would then be emitted, and its deletion never come."""
    seed(fake, 10, page=4)
    in_second = False

    def changes_fail_in_the_second(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        nonlocal in_second
        if name == "Email/query":
            in_second = is_second(name, arguments)  # the mock answers one request at a time, its calls in order
        if name == "Email/changes" and in_second:
            return ["error", {"type": "serverFail"}]
        return None

    fake.override = changes_fail_in_the_second
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(10)]
    page_requests = [[name for name, _, _ in body["methodCalls"]] for body in fake.requests
                     if any(name == "Email/query" for name, _, _ in body["methodCalls"])]
    assert all("Email/changes" in calls for calls in page_requests)
    assert queries(fake)[-1] == ("M0006", 1, None, 4)  # the page after the first of the pair, asked for itself


def test_an_import_stops_asking_in_pairs_from_a_server_that_never_lines_a_second_up(
    fake: FakeJmap, config: dict[str, Any],
) -> None:
    seed(fake, 20, page=4)
    fake.answer_short_query_pages(2)  # pages of 2, whatever the limit: a second never starts where the first ended
    output = read_stream(config | SEVERAL, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(20)]
    assert sum(offset is not None and offset > 1 for _, offset, _, _ in queries(fake)) == pairs.MISSES_IN_A_ROW


@pytest.mark.parametrize(("workers", "most_held"), [(1, 0), (4, 1)])
def test_an_import_holds_no_answer_it_is_done_with_when_it_asks_for_the_next(
    fake: FakeJmap, config: dict[str, Any], workers: int, most_held: int,
) -> None:
    """Answers alive when each page is asked for: none with one worker, the page being written with several. A
    round's answers held on into the next round's requests made it 1 and 3 (found in review)."""
    seed(fake, 24, page=4)
    held: list[int] = []

    def count_answers(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name == "Email/query":
            gc.collect()
            held.append(sum(isinstance(obj, MethodResponses) for obj in gc.get_objects()))
        return None

    fake.override = count_answers
    output = read_stream(config | {"num_workers": workers}, "emails")
    assert ids(output) == [f"M{number:04d}" for number in range(24)]
    assert max(held) <= most_held, held
