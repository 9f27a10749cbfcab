#!/usr/bin/env python3
# ruff: noqa: RUF001  (the sample contacts are deliberately full of non-ASCII names)
"""Seed the rest of a JMAP account on the ext Cyrus (`CYRUS_PROFILE=ext scripts/cyrus.sh`): contacts,
a contact group, two calendars with events, and a sieve script.

Contacts and events go in the way real clients put them there: CardDAV and CalDAV over HTTP (`PUT` of
a vCard or an iCalendar object, `MKCALENDAR`, `DELETE`). The JMAP id of such an object is its UID. The
sieve script goes in through JMAP itself: the script is uploaded as a blob (the session's uploadUrl)
and `SieveScript/set` creates it from that blob and activates it (Cyrus 3.6 offers this under
`https://cyrusimap.org/ns/jmap/sieve`; no ManageSieve service is needed).

Everything is deterministic (fixed UIDs, names and dates), so two seeded accounts hold the same objects.

Importable API: Dav, contact_vcard, sample_contacts, group_vcard, event_ical, sample_events, SIEVE_SCRIPT,
upload_sieve, seed, empty.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import requests

FIRST_NAMES = ["José", "Zoë", "Jürgen", "Łukasz", "Søren", "Françoise", "Ömer", "Άννα", "Иван", "太郎",
               "Mª Ángeles", "Nguyễn", "Ilse", "Grégoire", "Björk", "Çağla", "Ærin", "Dvořák", "Renée", "Siobhán"]
LAST_NAMES = ["Müller", "Straße", "Nowak", "Kjærgaard", "Lefèvre", "Yılmaz", "Παπαδοπούλου", "Петров", "田中",
              "Pérez", "Trần", "Großmann", "Ó Briain", "Đorđević", "Škoda", "Häkkinen", "Ibáñez", "Żak"]
CITIES = [("Berlin", "10115", "Germany"), ("Zürich", "8001", "Switzerland"), ("Kraków", "30-001", "Poland"),
          ("Århus", "8000", "Denmark"), ("São Paulo", "01000-000", "Brazil"), ("Île-de-France", "75001", "France")]
STREETS = ["Hauptstraße", "Rue de l'Église", "ulica Świętokrzyska", "Østergade", "Avenida São João"]

EXT_ORIGIN = "http://127.0.0.1:18081"  # ignore-https-check
CALENDAR_WORK = "Work"
BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""

SIEVE_SCRIPT = """require ["fileinto", "imap4flags"];
# Invoices (Rechnungen, factures) go to their folder; mail from the boss is flagged.
if header :contains "subject" ["Rechnung", "Facture", "Invoice"] {
    fileinto "Reçus/Factures";
} elsif address :is "from" "boss@example.com" {
    addflag "\\\\Flagged";
}
"""


def crlf(text: str) -> bytes:
    return ("\r\n".join(text.strip("\n").split("\n")) + "\r\n").encode()


@dataclass(frozen=True)
class Dav:
    """CardDAV/CalDAV requests for one user on a Cyrus with `httpmodules: caldav carddav jmap`."""

    origin: str
    user: str
    password: str

    def _request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        response = requests.request(method, self.origin + path, data=body, headers=headers,
                                    auth=(self.user, self.password), timeout=30)
        if response.status_code not in (200, 201, 204):
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")

    def contact_path(self, uid: str) -> str:
        return f"/dav/addressbooks/user/{self.user}/Default/{uid}.vcf"

    def event_path(self, calendar: str, uid: str) -> str:
        return f"/dav/calendars/user/{self.user}/{calendar}/{uid}.ics"

    def put_vcard(self, uid: str, vcard: str) -> None:
        self._request("PUT", self.contact_path(uid), crlf(vcard), "text/vcard; charset=utf-8")

    def put_event(self, calendar: str, uid: str, ical: str) -> None:
        self._request("PUT", self.event_path(calendar, uid), crlf(ical), "text/calendar; charset=utf-8")

    def delete_contact(self, uid: str) -> None:
        self._request("DELETE", self.contact_path(uid))

    def delete_event(self, calendar: str, uid: str) -> None:
        self._request("DELETE", self.event_path(calendar, uid))

    def make_calendar(self, name: str) -> None:
        self._request("MKCALENDAR", f"/dav/calendars/user/{self.user}/{name}/")

    def delete_calendar(self, name: str) -> None:
        self._request("DELETE", f"/dav/calendars/user/{self.user}/{name}/")

    def delete_calendar_if_there(self, name: str) -> None:
        with contextlib.suppress(RuntimeError):
            self.delete_calendar(name)


def contact_vcard(index: int, note: str = "") -> tuple[str, str]:
    """The UID and vCard 3.0 of sample contact `index`: a non-ASCII name, phones, an address, a birthday."""
    uid = f"contact-{index:04d}"
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index * 7) % len(LAST_NAMES)]
    city, postcode, country = CITIES[index % len(CITIES)]
    street = f"{STREETS[index % len(STREETS)]} {index % 90 + 1}"
    birthday = date(1950, 1, 1) + timedelta(days=index * 97 % 18000)
    lines = [
        "BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"N:{last};{first};;;", f"FN:{first} {last}",
        f"EMAIL;TYPE=INTERNET:contact{index}@example.org", f"TEL;TYPE=CELL:+49 170 {1000000 + index}",
        f"ADR;TYPE=HOME:;;{street};{city};;{postcode};{country}", f"BDAY:{birthday.isoformat()}",
    ]
    if index % 3 == 0:
        lines.append(f"TEL;TYPE=WORK:+41 44 {2000000 + index}")
    if index % 5 == 0:
        lines += [f"ORG:Société Nº{index % 7}", "TITLE:Ingénieure"]
    if note:
        lines.append(f"NOTE:{note}")
    lines.append("END:VCARD")
    return uid, "\n".join(lines)


def sample_contacts(count: int) -> list[tuple[str, str]]:
    return [contact_vcard(index) for index in range(count)]


def group_vcard(uid: str, name: str, member_uids: Sequence[str]) -> str:
    """An Apple-style group vCard, which Cyrus shows as a ContactGroup."""
    members = [f"X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:{member}" for member in member_uids]
    return "\n".join(["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{name}", f"N:{name};;;;",
                      "X-ADDRESSBOOKSERVER-KIND:group", *members, "END:VCARD"])


def _calendar(*components: str) -> str:
    return "\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//source-jmap//seed//EN", *components,
                      "END:VCALENDAR"])


def event_ical(uid: str, summary: str, start: str, end: str, extra: Sequence[str] = (),
               overrides: Sequence[str] = ()) -> str:
    """An iCalendar object; `start`/`end` are whole DTSTART/DTEND lines (time zone or date value)."""
    main = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20241101T090000Z", f"SUMMARY:{summary}", start, end, *extra,
            "END:VEVENT"]
    return _calendar(BERLIN_VTIMEZONE, *main, *overrides)


def sample_events() -> list[tuple[str, str, str]]:
    """(calendar, uid, iCalendar): all-day, Europe/Berlin, a weekly series with a moved occurrence, attendees."""
    berlin = "TZID=Europe/Berlin"
    events = [
        ("Default", "event-holiday", event_ical(
            "event-holiday", "Tag der Deutschen Einheit", "DTSTART;VALUE=DATE:20261003", "DTEND;VALUE=DATE:20261004")),
        ("Default", "event-vacation", event_ical(
            "event-vacation", "Urlaub in Årdal", "DTSTART;VALUE=DATE:20261221", "DTEND;VALUE=DATE:20270104",
            ["TRANSP:TRANSPARENT"])),
        ("Default", "event-dentist", event_ical(
            "event-dentist", "Zahnarzt Dr. Groß", f"DTSTART;{berlin}:20261208T083000",
            f"DTEND;{berlin}:20261208T091500", ["LOCATION:Friedrichstraße 12, Berlin"])),
        (CALENDAR_WORK, "event-standup", event_ical(
            "event-standup", "Stand-up", f"DTSTART;{berlin}:20261102T094500", f"DTEND;{berlin}:20261102T100000",
            ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=20"],
            ["BEGIN:VEVENT", "UID:event-standup", "DTSTAMP:20241101T090000Z",
             f"RECURRENCE-ID;{berlin}:20261214T094500", "SUMMARY:Stand-up (moved to Tuesday)",
             f"DTSTART;{berlin}:20261215T094500", f"DTEND;{berlin}:20261215T100000", "END:VEVENT"])),
        (CALENDAR_WORK, "event-review", event_ical(
            "event-review", "Quartalsreview Q4", f"DTSTART;{berlin}:20261210T140000",
            f"DTEND;{berlin}:20261210T153000",
            ["ORGANIZER;CN=Demo:mailto:organizer@example.com",
             "ATTENDEE;CN=José Müller;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:jose@example.de",
             "ATTENDEE;CN=Zoë Straße;PARTSTAT=NEEDS-ACTION;ROLE=OPT-PARTICIPANT:mailto:zoe@example.org",
             "LOCATION:Raum Öresund"])),
        (CALENDAR_WORK, "event-offsite", event_ical(
            "event-offsite", "Offsite Zürich", f"DTSTART;{berlin}:20270115T090000", f"DTEND;{berlin}:20270115T170000",
            ["ORGANIZER;CN=Demo:mailto:organizer@example.com",
             "ATTENDEE;CN=Søren Kjærgaard;PARTSTAT=TENTATIVE:mailto:soren@example.dk"])),
    ]
    return events


def jmap_session(origin: str, user: str, password: str) -> dict[str, Any]:
    response = requests.get(origin + "/jmap/", auth=(user, password), timeout=30)
    response.raise_for_status()
    session: dict[str, Any] = response.json()
    return session


def upload_sieve(origin: str, user: str, password: str, name: str, script: str) -> str:
    """Upload `script` as a blob and create it, active, with SieveScript/set; its JMAP id."""
    auth = (user, password)
    upload = requests.post(f"{origin}/jmap/upload/{user}/", data=script.encode(), auth=auth, timeout=30,
                           headers={"Content-Type": "application/sieve"})
    upload.raise_for_status()
    body = {"using": ["urn:ietf:params:jmap:core", "https://cyrusimap.org/ns/jmap/sieve"], "methodCalls": [
        ["SieveScript/set", {"accountId": user, "create": {"s": {"name": name, "blobId": upload.json()["blobId"]}},
                             "onSuccessActivateScript": "#s"}, "0"]]}
    response = requests.post(f"{origin}/jmap/", json=body, auth=auth, timeout=30)
    response.raise_for_status()
    [[method, result, _]] = response.json()["methodResponses"]
    if method != "SieveScript/set" or not result.get("created"):
        raise RuntimeError(f"SieveScript/set did not create the script: {method} {result}")
    script_id: str = result["created"]["s"]["id"]
    return script_id


def empty(origin: str, user: str, password: str) -> None:
    """Remove what an earlier seed (and a demo's changes) left: contacts, groups, events, the second calendar,
    sieve scripts. For demos that reuse one account; tests use fresh accounts."""
    auth = (user, password)
    using = ["urn:ietf:params:jmap:core", "https://cyrusimap.org/ns/jmap/contacts",
             "https://cyrusimap.org/ns/jmap/calendars", "https://cyrusimap.org/ns/jmap/sieve"]

    def call(method_calls: list[list[Any]]) -> list[Any]:
        response = requests.post(f"{origin}/jmap/", json={"using": using, "methodCalls": method_calls}, auth=auth,
                                 timeout=60)
        response.raise_for_status()
        answers: list[Any] = response.json()["methodResponses"]
        return answers

    Dav(origin, user, password).delete_calendar_if_there(CALENDAR_WORK)
    # An active script cannot be destroyed. Cyrus 3.6 follows an older draft than RFC 9661: it deactivates with
    # onSuccessActivateScript: null (RFC 9661's onSuccessDeactivateScript is invalidArguments there).
    call([["SieveScript/set", {"accountId": user, "onSuccessActivateScript": None}, "off"]])
    for kind in ("Contact", "ContactGroup", "CalendarEvent", "SieveScript"):
        every_id = {"resultOf": "q", "name": f"{kind}/query", "path": "/ids"}
        call([[f"{kind}/query", {"accountId": user}, "q"],
              [f"{kind}/set", {"accountId": user, "#destroy": every_id}, "s"]])


@dataclass(frozen=True)
class Seeded:
    contacts: list[str]
    group: str
    events: list[tuple[str, str]]
    sieve_script: str


def seed(origin: str, user: str, password: str, contacts: int = 300) -> Seeded:
    dav = Dav(origin, user, password)
    uids = []
    for uid, vcard in sample_contacts(contacts):
        dav.put_vcard(uid, vcard)
        uids.append(uid)
    group = "group-friends"
    dav.put_vcard(group, group_vcard(group, "Freunde & Familie", uids[:12]))
    dav.make_calendar(CALENDAR_WORK)
    events = []
    for calendar, uid, ical in sample_events():
        dav.put_event(calendar, uid, ical)
        events.append((calendar, uid))
    script = upload_sieve(origin, user, password, "filters", SIEVE_SCRIPT)
    return Seeded(uids, group, events, script)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--origin", default=EXT_ORIGIN, help="the ext Cyrus (default %(default)s)")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--contacts", type=int, default=300)
    args = parser.parse_args(argv)
    seeded = seed(args.origin, args.user, args.password, args.contacts)
    print(f"seeded {len(seeded.contacts)} contacts, 1 group, 2 calendars with {len(seeded.events)} events "
          f"and 1 sieve script over CardDAV/CalDAV/JMAP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
