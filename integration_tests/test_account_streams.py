"""Contacts, groups, calendars, events, quotas and sieve scripts against the ext Cyrus (CYRUS_PROFILE=ext):
Cyrus's own dialect of each type, with data put in through CardDAV/CalDAV as real clients do
(scripts/seed_account.py). The standard dialects are tested against the fake server in
unit_tests/test_account_streams.py.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import EXT_HTTP_PORT, EXT_ORIGIN, MailAccount, new_ext_account, seed_account
from .connector import Run, connector_arguments, run_connector
from .fault_proxy import FaultProxy, announcing_max_objects_in_get, running
from .test_interrupted import committed, resumed_state

CYRUS_CONTACTS = "https://cyrusimap.org/ns/jmap/contacts"
CYRUS_CALENDARS = "https://cyrusimap.org/ns/jmap/calendars"
# stream -> (JMAP type, capability) in Cyrus's dialect
CYRUS_TYPES = {
    "contacts": ("Contact", CYRUS_CONTACTS),
    "contact_groups": ("ContactGroup", CYRUS_CONTACTS),
    "calendars": ("Calendar", CYRUS_CALENDARS),
    "calendar_events": ("CalendarEvent", CYRUS_CALENDARS),
    "quotas": ("Quota", "https://cyrusimap.org/ns/jmap/quota"),
    "sieve_scripts": ("SieveScript", "https://cyrusimap.org/ns/jmap/sieve"),
}
STREAMS = [*CYRUS_TYPES, "address_books"]
CHANGING = ["contacts", "contact_groups", "calendars", "calendar_events"]  # streams with /changes on Cyrus
CONTACTS = 300
SMALL_PAGE = 7

Dump = dict[str, dict[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def seeded(ext_cyrus: None) -> MailAccount:
    """One account for the module's read-only tests: 300 contacts, a group, 2 calendars, 6 events, a script."""
    return new_ext_account(CONTACTS)


def ext_config(account: MailAccount, origin: str = EXT_ORIGIN) -> dict[str, Any]:
    return account.config(session_url=f"{origin}/jmap/")


def raw_dump(account: MailAccount) -> Dump:
    """Every object of every type, taken with plain HTTP: `Foo/get ids: null`, scripts' text from their blobs."""
    auth = (account.user, account.password)
    calls = [[f"{jmap_type}/get", {"accountId": account.user, "ids": None}, stream]
             for stream, (jmap_type, _) in CYRUS_TYPES.items()]
    dump: Dump = {}
    for name, result, stream in account.jmap(sorted({capability for _, capability in CYRUS_TYPES.values()}), calls):
        assert name != "error", result
        dump[stream] = {obj["id"]: obj for obj in result["list"]}
    for script in dump["sieve_scripts"].values():
        blob = requests.get(f"{EXT_ORIGIN}/jmap/download/{account.user}/{script['blobId']}/s?accept=application/sieve",
                            auth=auth, timeout=30)
        script["content"] = blob.content.decode()
    return dump


def objects(run: Run, stream: str) -> dict[str, dict[str, Any]]:
    """The stream's upserted records without accountId and the CDC columns, by id."""
    return {record["id"]: {k: v for k, v in record.items() if k != "accountId" and not k.startswith("_ab_cdc_")}
            for record in run.records(stream) if not record.get("_ab_cdc_deleted_at")}


def differences(got: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> list[tuple[str, ...]]:
    """(id, property, got, expected) for every property that differs, and the ids only one side has.

    A property that is null on the server is absent from the record: the CDK's message serializer leaves
    out top-level nulls (nested ones stay), and a destination reads a missing column as null.
    """
    found: list[tuple[str, ...]] = [(i, "missing" if i in expected else "extra") for i in set(got) ^ set(expected)]
    for i in set(got) & set(expected):
        found += [(i, key, repr(got[i].get(key)), repr(expected[i].get(key)))
                  for key in set(got[i]) | set(expected[i]) if got[i].get(key) != expected[i].get(key)]
    return sorted(found)


def destination(*runs: Run) -> dict[str, dict[str, dict[str, Any]]]:
    """What a deduplicating destination holds after the runs, per stream, as `objects` shows them; a null
    property is left out (the CDK leaves top-level nulls out of records)."""
    held: dict[str, dict[str, dict[str, Any]]] = {stream: {} for stream in CHANGING}
    for run in runs:
        for stream in CHANGING:
            held[stream] |= objects(run, stream)
            for object_id in deleted(run, stream):
                held[stream].pop(object_id, None)
    return without_nulls(held)


def without_nulls(dump: Dump) -> Dump:
    """The streams that change, each object without its top-level null properties."""
    return {stream: {i: {k: v for k, v in obj.items() if v is not None} for i, obj in dump[stream].items()}
            for stream in CHANGING}


def deleted(run: Run, stream: str) -> set[str]:
    return {record["id"] for record in run.records(stream) if record.get("_ab_cdc_deleted_at")}


def read(config: dict[str, Any], tmp_path: Path, state: list[dict[str, Any]] | None = None,
         sync_mode: str = "incremental", streams: list[str] = STREAMS) -> Run:
    run = run_connector("read", tmp_path, config, streams, state, sync_mode)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def test_a_full_read_of_every_stream_equals_a_raw_jmap_dump_property_for_property(
    seeded: MailAccount, tmp_path: Path
) -> None:
    run = read(ext_config(seeded), tmp_path, sync_mode="full_refresh")
    dump = raw_dump(seeded)
    assert {stream: len(dump[stream]) for stream in CYRUS_TYPES} == {
        "contacts": CONTACTS, "contact_groups": 1, "calendars": 2, "calendar_events": 6, "quotas": 1,
        "sieve_scripts": 1}
    for stream in CYRUS_TYPES:
        assert differences(objects(run, stream), dump[stream]) == [], stream
        assert {record["accountId"] for record in run.records(stream)} == {seeded.user}
    assert run.records("address_books") == []
    assert "address_books: account " + seeded.user + " has no urn:ietf:params:jmap:contacts" in run.log_text
    assert dump["sieve_scripts"][next(iter(dump["sieve_scripts"]))]["content"] == seed_account.SIEVE_SCRIPT
    standup = dump["calendar_events"]["event-standup"]
    assert standup["timeZone"] == "Europe/Berlin" and standup["recurrenceOverrides"]


def test_check_reports_the_capabilities_each_account_offers(seeded: MailAccount, tmp_path: Path) -> None:
    run = run_connector("check", tmp_path, ext_config(seeded))
    assert run.connection_status["status"] == "SUCCEEDED"
    assert (f"Account {seeded.user} offers contacts (Cyrus: {CYRUS_CONTACTS}), calendars (Cyrus: {CYRUS_CALENDARS})"
            in run.log_text)


def test_an_import_killed_mid_way_resumes_after_its_last_checkpoint_and_delivers_every_contact(
    seeded: MailAccount, tmp_path: Path
) -> None:
    with running(FaultProxy(EXT_HTTP_PORT, rewrite_session=announcing_max_objects_in_get(SMALL_PAGE))) as origin:
        config = ext_config(seeded, origin)
        arguments = connector_arguments("read", tmp_path, config, ["contacts"])
        process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout is not None
        lines, seen = [], 0
        for line in process.stdout:
            lines.append(line)
            seen += line.startswith('{"type":"RECORD"')
            if seen == 40:  # 6 pages of 7 or 6 (a pair's second starts at the first's last) and some: 260 to come
                process.kill()
                break
        process.stdout.close()
        killed = Run(process.wait(), "".join(lines), "")
        assert killed.returncode == -signal.SIGKILL
        kept = committed(killed)
        state = resumed_state(None, killed)
        assert state[0]["stream"]["stream_state"]["accounts"][seeded.user]["import"]  # a resume point, not a state
        resumed = read(config, tmp_path, state, streams=["contacts"])
    before, after = [r["id"] for r in kept.records("contacts")], [r["id"] for r in resumed.records("contacts")]
    assert len(before) >= 30 and not set(before) & set(after)  # 7 + 7 + 6 + 7 + 6 with several workers
    assert sorted(before + after) == sorted(raw_dump(seeded)["contacts"])
    assert "resuming the import" in resumed.log_text


@pytest.fixture
def changing(ext_cyrus: None) -> MailAccount:
    return new_ext_account(30)


def test_dav_changes_come_in_the_next_incremental_read_exactly_and_a_read_without_change_brings_none(
    changing: MailAccount, tmp_path: Path
) -> None:
    config = ext_config(changing)
    first = read(config, tmp_path)
    dav = seed_account.Dav(EXT_ORIGIN, changing.user, changing.password)
    new_uid, new_card = seed_account.contact_vcard(500)
    dav.put_vcard(new_uid, new_card)
    dav.put_vcard(*seed_account.contact_vcard(3, note="Neue Nummer ab März"))
    dav.delete_contact("contact-0007")
    dav.put_vcard("group-friends", seed_account.group_vcard("group-friends", "Freunde & Familie",
                                                            ["contact-0001", new_uid]))
    dav.put_event("Default", "event-new", seed_account.event_ical(
        "event-new", "Weihnachtsmarkt", "DTSTART;TZID=Europe/Berlin:20261212T180000",
        "DTEND;TZID=Europe/Berlin:20261212T210000"))
    dav.put_event("Default", "event-dentist", seed_account.event_ical(
        "event-dentist", "Zahnarzt Dr. Groß (verschoben)", "DTSTART;TZID=Europe/Berlin:20261209T083000",
        "DTEND;TZID=Europe/Berlin:20261209T091500"))
    dav.delete_event("Default", "event-holiday")

    second = read(config, tmp_path, first.final_state())
    dump = raw_dump(changing)
    assert dump["contacts"]["contact-0003"]["notes"] == "Neue Nummer ab März"
    assert differences(objects(second, "contacts"),
                       {uid: dump["contacts"][uid] for uid in (new_uid, "contact-0003")}) == []
    assert deleted(second, "contacts") == {"contact-0007"}
    assert differences(objects(second, "contact_groups"), dump["contact_groups"]) == []
    assert differences(objects(second, "calendar_events"),
                       {uid: dump["calendar_events"][uid] for uid in ("event-new", "event-dentist")}) == []
    assert deleted(second, "calendar_events") == {"event-holiday"}
    assert second.records("calendars") == []
    assert destination(first, second) == without_nulls(dump)

    third = read(config, tmp_path, second.final_state())
    assert {stream: third.records(stream) for stream in CHANGING} == {stream: [] for stream in CHANGING}
    assert len(third.records("sieve_scripts")) == 1  # Cyrus has no SieveScript/changes: read whole each time


def test_a_deleted_calendar_and_its_events_come_as_deletions_though_cyrus_cannot_calculate_the_changes(
    changing: MailAccount, tmp_path: Path
) -> None:
    config = ext_config(changing)
    first = read(config, tmp_path)
    seed_account.Dav(EXT_ORIGIN, changing.user, changing.password).delete_calendar(seed_account.CALENDAR_WORK)

    second = read(config, tmp_path, first.final_state())
    dump = raw_dump(changing)
    # Cyrus answers cannotCalculateChanges once a calendar is gone: the events are read again in full, and
    # the ids that read did not bring are the deletions.
    assert "cannot calculate changes" in second.log_text
    assert deleted(second, "calendar_events") == {"event-standup", "event-review", "event-offsite"}
    assert deleted(second, "calendars") == {seed_account.CALENDAR_WORK}
    assert destination(first, second) == without_nulls(dump)
    assert set(dump["calendar_events"]) == {"event-holiday", "event-vacation", "event-dentist"}

    third = read(config, tmp_path, second.final_state())
    assert {stream: third.records(stream) for stream in CHANGING} == {stream: [] for stream in CHANGING}
