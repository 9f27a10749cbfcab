"""What the sync engine yields: one request's worth of objects (sync.py for changes and whole reads, importing.py
for an import)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .datatype import ResumePoint
from .responses import JsonObject


@dataclass
class Page:
    """One request's worth of objects: those created (or imported), updated and destroyed.

    `state` may be saved once the page's records are out; `resume` is where an unfinished import
    goes on (None once it is done, and for changes). `total` is the server's count of what this run of an
    import reads, from its first page on (on that page); `count` how many objects an import page brought
    (None for other pages). `created_ids`: the objects the page may bring that the state it starts from does
    not know, which that state's `/changes` may never list again (created and destroyed since it: RFC 8620
    section 5.2): those /changes lists as created, and every object of a read whole. An import page has none:
    its objects existed at its captured state, those created later are held back for the changes after it.
    """

    created: Iterator[JsonObject]
    state: str
    imported: bool
    updated: Iterator[JsonObject] = field(default_factory=lambda: iter(()))
    destroyed: Sequence[str] = ()
    resume: ResumePoint | None = None
    total: int | None = None
    count: int | None = None
    created_ids: Sequence[str] = ()
