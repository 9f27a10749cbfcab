"""The queue between the engine's workers and the main thread (handoff.py): how far a worker may run ahead of the
output, and in what order the main thread takes what they put."""

from __future__ import annotations

import threading
import time

import msgspec
from airbyte_cdk.sources.types import Record

from source_jmap.handoff import AheadOfOutput, Lockstep


def record(text: str) -> Record:
    return Record(data={"id": text}, stream_name="emails")


def size(item: Record) -> int:
    return len(msgspec.json.encode(item.data))


def put_in_thread(queue: AheadOfOutput | Lockstep, item: Record) -> threading.Thread:
    thread = threading.Thread(target=queue.put, args=(item,), daemon=True)
    thread.start()
    return thread


def assert_waits_until_the_output_takes(queue: AheadOfOutput, item: Record, taken: Record) -> None:
    """A worker's put of `item` waits, and goes once the main thread took `taken`."""
    waiting = put_in_thread(queue, item)
    waiting.join(0.2)
    assert waiting.is_alive(), "the put waits for the output"
    assert queue.get() is taken
    waiting.join(2)
    assert not waiting.is_alive(), "room made by the output lets it go"


def test_workers_reading_side_by_side_run_ahead_of_the_output_until_its_budget_is_held() -> None:
    first, second, third = record("a" * 40), record("b" * 40), record("c" * 40)
    queue = AheadOfOutput(budget=size(first) + size(second))
    queue.put(first)
    queue.put(second)  # both within the budget: neither waits for the main thread
    assert_waits_until_the_output_takes(queue, third, taken=first)  # past the budget
    assert [queue.get(), queue.get()] == [second, third]


def test_a_record_larger_than_the_budget_goes_when_the_output_has_caught_up() -> None:
    small, large = record("a"), record("x" * 1000)
    queue = AheadOfOutput(budget=100)
    queue.put(small)
    # it waits while another record is not written; alone in the queue, it goes whatever its size
    assert_waits_until_the_output_takes(queue, large, taken=small)
    assert queue.get() is large


def test_the_main_thread_takes_items_in_the_order_they_were_put() -> None:
    queue = AheadOfOutput(budget=1 << 20)
    items = [record(str(number)) for number in range(200)]
    threads = [threading.Thread(target=lambda part=part: [queue.put(item) for item in part]) for part in
               (items[:100], items[100:])]
    for thread in threads:
        thread.start()
    taken = [queue.get() for _ in items]
    numbers = [int(item.data["id"]) for item in taken]
    assert sorted(numbers) == list(range(200))
    assert [n for n in numbers if n < 100] == list(range(100)), "each worker's items keep their order"
    assert [n for n in numbers if n >= 100] == list(range(100, 200))


def test_one_worker_goes_no_further_than_the_output() -> None:
    queue = Lockstep()
    first = record("a")
    putting = put_in_thread(queue, first)
    while queue.qsize() == 0:
        time.sleep(0.001)
    assert queue.get() is first
    putting.join(0.2)
    assert putting.is_alive(), "the put returns only once the main thread comes back for the next item"
    second = record("b")
    after = put_in_thread(queue, second)  # the main thread's next `get` lets the first put return
    assert queue.get() is second
    putting.join(2)
    assert not putting.is_alive()
    assert after.is_alive(), "and so does the second, on the third"
