"""Downloads run in parallel, their records in order: one sliding window for every stream that downloads.

The window is deep (a batch, or a short window, leaves workers idle behind one slow download) but
bounded by the bytes its tasks hold in memory, so memory holds the window, never the page.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

# Tasks queued or under way at once: per worker, and in the bytes they hold (base64 adds a third).
WINDOW_PER_WORKER = 16
WINDOW_BYTES = 64 * 1024 * 1024

T = TypeVar("T")

# A task, and the bytes it holds in memory until its results are taken (0 for one that writes a file).
Task = tuple[Callable[[], list[T]], int]


def in_order(tasks: Iterable[Task[T]], workers: int, name: str) -> Iterator[T]:
    """The results of `tasks`, run on `workers` threads named after `name`, in the order of the tasks.

    Tasks are taken from the iterable only while the window has room, so a lazy iterable of a page's
    objects is read as far ahead as the window, no further. A task's exception is raised when its turn
    comes: every result before it is out first.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        window: deque[tuple[Future[list[T]], int]] = deque()
        window_bytes = 0
        for task, size in tasks:
            window.append((pool.submit(task), size))
            window_bytes += size
            while len(window) >= WINDOW_PER_WORKER * workers or window_bytes > WINDOW_BYTES:
                future, size = window.popleft()
                window_bytes -= size
                yield from future.result()
        while window:
            yield from window.popleft()[0].result()
