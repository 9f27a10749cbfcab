"""Pages read one ahead (jmap/ahead.py): the next page is asked for while the one before is used, in order, a page
used is let go, and a read closed early, or dropped, leaves no thread and no page generator open."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from source_jmap.jmap.ahead import read_ahead

from .helpers import wait_for

WAIT_SECONDS = 10.0


@dataclass
class Page:
    number: int


class Pages:
    """A page generator that records which pages were taken, and may hold the taking of one until released."""

    def __init__(self, count: int, failing_at: int | None = None, held_at: int | None = None) -> None:
        self.count = count
        self.failing_at = failing_at
        self.held_at = held_at
        self.taken: list[int] = []
        self.release = threading.Event()
        self.closed = False

    def generate(self) -> Generator[Page]:
        try:
            for number in range(1, self.count + 1):
                if number == self.held_at:
                    self.release.wait()
                if number == self.failing_at:
                    raise RuntimeError(f"page {number} failed")
                self.taken.append(number)
                yield Page(number)
        finally:
            self.closed = True


@pytest.fixture
def threads_before() -> Iterator[set[threading.Thread]]:
    """The threads alive before the test: a test judges only the read-ahead threads it started."""
    yield set(threading.enumerate())


@pytest.fixture
def held() -> Iterator[list[Pages]]:
    """Pages a test holds; released at its end, whatever happened, so that no thread waits for ever."""
    holding: list[Pages] = []
    yield holding
    for pages in holding:
        pages.release.set()


def holding(held: list[Pages], pages: Pages) -> Pages:
    held.append(pages)
    return pages


def ended(pages: Pages, threads_before: set[threading.Thread]) -> Callable[[], bool]:
    """Whether `pages` was closed and every read-ahead thread the test started has ended."""
    return lambda: pages.closed and not [thread for thread in threading.enumerate()
                                         if thread.name.startswith("read-ahead") and thread not in threads_before]


def numbers(pages: Iterable[Page]) -> list[int]:
    return [page.number for page in pages]


def test_the_next_page_is_taken_while_the_page_before_is_used() -> None:
    pages = Pages(3)
    ahead = read_ahead(pages.generate())
    assert next(ahead).number == 1
    wait_for(lambda: pages.taken == [1, 2], "page 2 was never taken")  # page 1 is still in use here
    assert numbers(ahead) == [2, 3]


def test_pages_come_in_order_and_each_is_taken_once(threads_before: set[threading.Thread]) -> None:
    pages = Pages(50)
    assert numbers(read_ahead(pages.generate())) == list(range(1, 51))
    assert pages.taken == list(range(1, 51))
    wait_for(ended(pages, threads_before), "the pages or their thread never ended")


def test_an_error_taking_a_page_is_raised_after_every_page_before_it(threads_before: set[threading.Thread]) -> None:
    pages = Pages(5, failing_at=3)
    ahead = read_ahead(pages.generate())
    assert numbers(next(ahead) for _ in range(2)) == [1, 2]
    with pytest.raises(RuntimeError, match="page 3 failed"):
        next(ahead)
    wait_for(ended(pages, threads_before), "the pages or their thread never ended")


def test_a_page_used_is_not_held_while_the_next_one_comes(held: list[Pages]) -> None:
    """Two pages are held at once only while the next one comes before the one before is used."""
    pages = holding(held, Pages(3, held_at=2))
    ahead = read_ahead(pages.generate())
    first = weakref.ref(next(ahead))
    asking = threading.Thread(target=next, args=(ahead,), daemon=True)
    asking.start()  # page 1 used; page 2 is still being taken
    wait_for(lambda: first() is None, "the page used is still held")
    pages.release.set()
    asking.join(WAIT_SECONDS)
    assert not asking.is_alive()
    ahead.close()


def test_a_read_closed_early_does_not_wait_takes_no_page_after_the_one_under_way_and_closes_the_pages(
    held: list[Pages], threads_before: set[threading.Thread],
) -> None:
    pages = holding(held, Pages(5, held_at=2))
    ahead = read_ahead(pages.generate())
    assert next(ahead).number == 1
    ahead.close()  # page 2 is being taken
    assert not pages.closed
    pages.release.set()
    wait_for(ended(pages, threads_before), "the pages or their thread never ended")
    assert pages.taken == [1, 2]


def test_a_read_dropped_without_being_closed_does_not_hold_up_the_garbage_collector(
    held: list[Pages], threads_before: set[threading.Thread],
) -> None:
    """The collector may close it in any thread, at any point, even under a lock of `threading` (the simulation
    hung so when closing waited for the page under way)."""
    pages = holding(held, Pages(5, held_at=2))
    ahead = read_ahead(pages.generate())
    assert next(ahead).number == 1
    cycle: list[Any] = [ahead]
    cycle.append(cycle)  # only the collector frees it
    del ahead, cycle
    collecting = threading.Thread(target=gc.collect, daemon=True)
    collecting.start()
    collecting.join(WAIT_SECONDS)
    assert not collecting.is_alive()
    assert not pages.closed  # page 2 is still held
    pages.release.set()
    wait_for(ended(pages, threads_before), "the pages or their thread never ended")
    assert pages.taken == [1, 2]
