"""What the sync engine yields: one request's worth of objects, one kind of page per kind of read.

ImportPage:   a page of an import (importing.py), with where the import goes on.
ChangesPage:  a page of `/changes` (sync.py): objects created and updated, ids destroyed.
WholePage:    every object of the type at once (sync.py): `Foo/get ids: null`, or the type read again after changes.

Each holds the server's JSON and decodes an object when it is iterated; `state` may be saved once the page's
records are out.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .responses import JsonObject
from .resume import ResumePoint


@dataclass(kw_only=True)
class Page:
    """What every kind of page has: the objects it brings (`created`) and the state they are as of."""

    created: Iterator[JsonObject]
    state: str

    @property
    @abstractmethod
    def ends_full_read(self) -> bool:
        """Whether the page is the last of a read of every object (an import or a whole read): an object the
        destination holds that no page of that read brought is gone."""

    def keep_objects(self) -> list[JsonObject]:
        """Every object of the page, decoded now and kept in the page to be iterated again: for a stream that needs
        them before their records (it holds the page decoded meanwhile)."""
        created = list(self.created)
        self.created = iter(created)
        return created


@dataclass(kw_only=True)
class ImportPage(Page):
    """A page of an import: objects that existed at the state captured before the import's first page.

    `resume` is where the import goes on (None: the last page). `total` is the server's count of what this run of
    the import reads, on its first page that has one; `count` how many objects the page brings. The state the
    import starts from knows every object of the page: those created after it are held back for the changes that
    follow the import.
    """

    resume: ResumePoint | None
    count: int
    total: int | None = None

    @property
    def ends_full_read(self) -> bool:
        return self.resume is None


@dataclass(kw_only=True)
class ChangesPage(Page):
    """A page of `/changes` since a state: `created` and `updated` objects, `destroyed` ids.

    `created_ids`: the ids /changes lists as created, which the state the page starts from does not know and
    whose `/changes` may never list again (created and destroyed since it: RFC 8620 section 5.2)."""

    updated: Iterator[JsonObject]
    destroyed: Sequence[str]
    created_ids: Sequence[str]

    @property
    def ends_full_read(self) -> bool:
        return False

    def keep_objects(self) -> list[JsonObject]:
        updated = list(self.updated)
        self.updated = iter(updated)
        return [*super().keep_objects(), *updated]


@dataclass(kw_only=True)
class WholePage(Page):
    """Every object of the type, read whole: `created_ids` are all their ids, which the state the page starts from
    may not know (created and destroyed since it, /changes may never list them: RFC 8620 section 5.2)."""

    created_ids: Sequence[str]

    @property
    def ends_full_read(self) -> bool:
        return True
