"""Calendars and their events (JSCalendar, RFC 8984): the JMAP Calendars capability or Cyrus's own."""

from __future__ import annotations

from ..jmap import DataType
from .base import JmapStream
from .dialects import CALENDARS, CYRUS_CALENDARS, Dialect
from .ledger import HeldIds


class CalendarStream(JmapStream):
    """Calendar objects. There is no Calendar/query: read whole, then Calendar/changes."""

    name = "calendars"
    ledger = HeldIds
    dialects = tuple(Dialect(capability, DataType("Calendar", (capability,), query=None))
                     for capability in (CALENDARS, CYRUS_CALENDARS))


class CalendarEventStream(JmapStream):
    """CalendarEvent objects as the server stores them: a recurring event is one object with its
    `recurrenceRule` and `recurrenceOverrides`, never expanded into occurrences."""

    name = "calendar_events"
    ledger = HeldIds
    dialects = tuple(Dialect(capability, DataType("CalendarEvent", (capability,)))
                     for capability in (CALENDARS, CYRUS_CALENDARS))
