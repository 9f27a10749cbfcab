"""Pages read one ahead: the request for a read's next page goes out while the page before is still being used.

The pages of one read come one request after another (each starts where the one before ended), and the server
takes most of a read's time building them: Cyrus spent 3.66 s of a 4.37 s `emails` full read of 10,000 emails
in three requests, the connector 0.29 s after each answer decoding, turning and handing over its records before
it asked for the next page. Asked for as soon as the page before has come, the next page costs its server time
only; the records are written meanwhile.

What a page asks for depends only on the answers before it, never on what became of their records (two pages may
be held at once, so the caller sizes each to half its budget; an import's pages also come two at once, pairs.py,
three then held: sync.py).
What changes is when they go out: a read stopped after a record may have asked for the page after it, whose answer
is thrown away (a request only reads).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from queue import SimpleQueue
from typing import Any, TypeVar, cast

T = TypeVar("T")

_NEXT, _STOP, _END = object(), object(), object()


def read_ahead(pages: Generator[T]) -> Generator[T]:
    """The items of `pages` in order, each next one taken on a thread of its own while the one before is used.

    An error in taking an item is raised in its place, after every item before it. Closed early, it does not wait:
    the item under way is taken (its request ends within the client's deadline; once the client is cancelled, no
    request, slot wait or retry of it goes out), then `pages` is closed on that thread, which ends. Closing may
    happen in the garbage collector, at any point of any thread: it only puts on a SimpleQueue, which is safe
    there (a close that joined the thread hung the simulation: the collector ran it in a thread starting up,
    under a lock of `threading` that the ending thread needed).
    """
    asks: SimpleQueue[object] = SimpleQueue()
    answers: SimpleQueue[tuple[bool, Any]] = SimpleQueue()  # (taken, the item or _END) or (False, the error)
    threading.Thread(target=_take, args=(pages, asks, answers), name="read-ahead", daemon=True).start()
    try:
        asks.put(_NEXT)
        while True:
            taken, item = answers.get()
            if not taken:
                raise item
            if item is _END:
                return
            asks.put(_NEXT)
            yield cast(T, item)
            item = None  # used: not held while the next one comes
    finally:
        asks.put(_STOP)


def _take(pages: Generator[Any], asks: SimpleQueue[object], answers: SimpleQueue[tuple[bool, Any]]) -> None:
    """Take an item of `pages` at each ask, until told to stop; then close `pages`. Daemon: a read that ends with
    its generator neither closed nor collected leaves this waiting, which must not keep the process alive."""
    try:
        while asks.get() is _NEXT:
            try:
                answers.put((True, next(pages, _END)))
            except BaseException as error:  # any: the reading thread waits for an answer; raised there in its place
                answers.put((False, error))
    finally:
        pages.close()
