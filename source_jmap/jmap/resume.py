"""Where an unfinished import goes on: a resume point, saved with the state after each page of an import.

By anchor, the last id the query returned and, when the query sorts by a property, that property's value on the
page's last object, so that an import whose anchor object was destroyed can go on from that value:

    {"anchor": "M0005", "receivedAt": "2024-01-01T05:00:00Z"}

By window, where anchors fail (calls.py): the objects `after` a bound, from a `position` within them, a page past
the start of the window following the id it starts at (`follows`):

    {"after": "2024-01-01T04:59:59Z", "position": 40, "follows": "M0044"}

`{}`: an import starts. The JSON is the one every version wrote (0.2.0 wrote the same members but `follows`, which
it ignores), member for member and in this order; `from_json` is the one check of a saved one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .responses import JsonObject

# The largest position a query takes: an UnsignedInt of RFC 8620 section 1.3.
MAX_POSITION = 2**53 - 1
MOMENT = "a date-time with its offset, such as 2024-01-01T00:00:00Z"


class InvalidResumePoint(ValueError):
    """A saved resume point this engine did not write, in one line: what is wrong, and where."""


@dataclass(frozen=True)
class SortValue:
    """The sort property's value on a page's last object: a date-time with its offset, or None where the server
    left the object without one (JSON null, as in the server's answer)."""

    name: str
    value: str | None


@dataclass(frozen=True)
class Bound:
    """`after`: a window's lower bound, a date-time with its offset (objects strictly after it are in the window).

    None (JSON null) bounds nothing: 0.2.0 took its bound from the page's last sort value as is, null for an email
    without a receivedAt, and the null is kept as written."""

    value: str | None


@dataclass(frozen=True)
class ResumePoint:
    """Where an import goes on (see the module). Every member is checked before it reaches a query or a parser (an
    `anchor` of 17 went to the server as is; a `receivedAt` of "garbage" ended in "Something went wrong")."""

    anchor: str | None = None
    last: SortValue | None = None
    after: Bound | None = None
    position: int | None = None
    follows: str | None = None

    @classmethod
    def after_page(cls, sort_property: str | None, last_id: str, last_object: JsonObject | None) -> ResumePoint:
        """Right after the last id the query returned, with the sort value of the page's last object when it is one
        `from_json` takes back (a date-time a server sent without its offset is left out: the point is read again
        by the next run, which would refuse it)."""
        if sort_property and last_object and sort_property in last_object and _is_moment_or_null(
                value := last_object[sort_property]):
            return cls(anchor=last_id, last=SortValue(sort_property, value))
        return cls(anchor=last_id)

    @classmethod
    def from_json(cls, document: Any, name: str) -> ResumePoint:
        """A saved point, or InvalidResumePoint saying what is wrong with it, as `name`/member (its place in the
        state). A member besides anchor, after, position and follows is the sort value: at most one."""
        if not isinstance(document, dict):
            raise InvalidResumePoint(f"{name} is not an object")
        sorted_by = [member for member in document if member not in _MEMBERS]
        if len(sorted_by) > 1:
            raise InvalidResumePoint(f"{name} has {len(sorted_by)} sort values ({', '.join(sorted_by)}); one at most")
        for member, value in document.items():
            valid, words = _MEMBERS.get(member, (_is_moment_or_null, MOMENT))
            if not valid(value):
                raise InvalidResumePoint(f"{name}/{member} is not {words}")
        return cls(
            anchor=document.get("anchor"),
            last=SortValue(sorted_by[0], document[sorted_by[0]]) if sorted_by else None,
            after=Bound(document["after"]) if "after" in document else None,
            position=document.get("position"),
            follows=follows if isinstance(follows := document.get("follows"), str) else None,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.anchor is not None:
            document["anchor"] = self.anchor
        if self.last is not None:
            document[self.last.name] = self.last.value
        if self.after is not None:
            document["after"] = self.after.value
        if self.position is not None:
            document["position"] = self.position
        if self.follows is not None:
            document["follows"] = self.follows
        return document

    def __str__(self) -> str:
        return json.dumps(self.to_json())

    @property
    def bound(self) -> str | None:
        """The lower bound of the objects the import reads (the query's filter), None for none."""
        return None if self.after is None else self.after.value

    @property
    def windowed(self) -> bool:
        """Whether the import pages by windows: a position within the objects after the bound."""
        return self.position is not None

    @property
    def following(self) -> str | None:
        """The id a page from here starts at, one position early; None for a page that follows none."""
        return self.follows if self.position else None

    def restarted(self, sort_property: str | None) -> ResumePoint:
        """The anchor was lost: go on from a bound just before the last sort value (re-reading is safe, skipping is
        not), from the bound the import already had, or from the start when neither is known."""
        value = self.last.value if self.last is not None and self.last.name == sort_property else None
        if (bound := bound_before(value)) is not None:
            return ResumePoint(after=Bound(bound))
        return ResumePoint(after=self.after)

    def window_start(self, sort_property: str | None) -> ResumePoint:
        """The first window of an import that goes on without anchors from here."""
        return replace(self.restarted(sort_property), position=0)

    def in_window(self, position: int, follows: str | None = None) -> ResumePoint:
        """A position in this window, following `follows` when the page starts past the window's start."""
        return ResumePoint(after=self.after, position=position, follows=follows)

    def next_window(self, position: int, page_ids: list[str], last_value: Any) -> ResumePoint:
        """Where the page after a page without anchors (from here, asked at `position`) starts: a window from just
        before the page's last sort value when that bound is later than the window's, else the same window past the
        page, following its last id."""
        bound = bound_before(last_value)
        later, current = moment_of(bound), moment_of(self.bound)
        if bound is not None and later is not None and (current is None or later > current):
            return ResumePoint(after=Bound(bound), position=0)
        return self.in_window(position + len(page_ids), page_ids[-1])


def bound_before(value: Any) -> str | None:
    """A UTCDate (RFC 8620 section 1.4) at least a second before a sort value that is a date-time, in whole
    seconds (truncating only moves it earlier), or None for any other value."""
    moment = moment_of(value)
    return None if moment is None else (moment - timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def moment_of(value: Any) -> datetime | None:
    """A date-time (RFC 3339, with its offset) as a moment, or None for any other value."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_anything(value: Any) -> bool:
    return True


def _is_position(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_POSITION


def _is_moment_or_null(value: Any) -> bool:
    """A date-time with its offset (a server's receivedAt, a UTCDate), or null: the receivedAt of an email the server
    left without one. A bound is parsed by the query's filter (selection.query_filter), where a date-time without an
    offset cannot be compared with start_date."""
    return value is None or moment_of(value) is not None


# The members of a resume point besides its sort value, and what each must be. A `follows` that is no id is of no
# use and left out: the page goes from its position, as it did before the point was typed.
_MEMBERS = {
    "anchor": (_is_string, "a string"),
    "after": (_is_moment_or_null, MOMENT),
    "position": (_is_position, f"a whole number from 0 to {MAX_POSITION}"),
    "follows": (_is_anything, "anything"),
}
