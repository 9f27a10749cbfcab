"""Pages read one ahead (jmap/ahead.py): the next page is asked for while the one before is used, in order, and a
read closed early leaves no thread and no page generator open."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from source_jmap.jmap.ahead import read_ahead

WAIT_SECONDS = 5.0


class Pages:
    """A page generator that records which pages were taken, and may hold the taking of one until released."""

    def __init__(self, count: int, failing_at: int | None = None, held_at: int | None = None) -> None:
        self.count = count
        self.failing_at = failing_at
        self.held_at = held_at
        self.taken: list[int] = []
        self.taken_event = threading.Event()  # set at every page taken
        self.release = threading.Event()
        self.closed = False

    def __iter__(self) -> Iterator[int]:
        try:
            for number in range(1, self.count + 1):
                if number == self.held_at:
                    self.release.wait(WAIT_SECONDS)
                if number == self.failing_at:
                    raise RuntimeError(f"page {number} failed")
                self.taken.append(number)
                self.taken_event.set()
                yield number
        finally:
            self.closed = True


def wait_until_taken(pages: Pages, number: int) -> None:
    while number not in pages.taken:
        assert pages.taken_event.wait(WAIT_SECONDS), f"page {number} was never taken"
        pages.taken_event.clear()


def read_ahead_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("read-ahead")]


def test_the_next_page_is_taken_while_the_page_before_is_used() -> None:
    pages = Pages(3)
    ahead = read_ahead(iter(pages))
    assert next(ahead) == 1
    wait_until_taken(pages, 2)  # page 1 is still in use here
    assert pages.taken == [1, 2]
    assert list(ahead) == [2, 3]


def test_pages_come_in_order_and_each_is_taken_once() -> None:
    pages = Pages(50)
    assert list(read_ahead(iter(pages))) == list(range(1, 51))
    assert pages.taken == list(range(1, 51))
    assert pages.closed


def test_an_error_taking_a_page_is_raised_after_every_page_before_it() -> None:
    pages = Pages(5, failing_at=3)
    ahead = read_ahead(iter(pages))
    assert [next(ahead), next(ahead)] == [1, 2]
    with pytest.raises(RuntimeError, match="page 3 failed"):
        next(ahead)


def test_a_read_closed_early_does_not_wait_takes_no_page_after_the_one_under_way_and_closes_the_pages() -> None:
    pages = Pages(5, held_at=2)
    ahead = read_ahead(iter(pages))
    assert next(ahead) == 1
    ahead.close()  # page 2 is being taken
    assert not pages.closed
    pages.release.set()
    wait_for(lambda: pages.closed and read_ahead_threads() == [])
    assert pages.taken == [1, 2]


def test_a_read_dropped_without_being_closed_does_not_hold_up_the_garbage_collector() -> None:
    """The collector may close it in any thread, at any point, even under a lock of `threading` (the simulation
    hung so when closing waited for the page under way)."""
    pages = Pages(5, held_at=2)
    ahead = read_ahead(iter(pages))
    assert next(ahead) == 1
    cycle: list[Any] = [ahead]
    cycle.append(cycle)  # only the collector frees it
    del ahead, cycle
    collecting = threading.Thread(target=gc.collect)
    collecting.start()
    collecting.join(1.0)
    assert not collecting.is_alive()  # page 2 is still held
    pages.release.set()
    wait_for(lambda: pages.closed and read_ahead_threads() == [])
    assert pages.taken == [1, 2]


def test_a_read_to_its_end_leaves_no_thread() -> None:
    pages = Pages(3)
    list(read_ahead(iter(pages)))
    wait_for(lambda: read_ahead_threads() == [])
    assert pages.closed


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "never came true"
        time.sleep(0.001)
