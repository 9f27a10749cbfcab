"""The main job with Airbyte's own tooling: PyAirbyte runs the connector into a DuckDB file, twice.

Against the local Cyrus (scripts/cyrus.sh): seed a fresh sample mailbox, read every stream into
.local/warehouse/jmap.duckdb (a full import), change the mailbox over IMAP (flag, move, expunge,
append), read again (incremental, from the state PyAirbyte keeps in the same file), and show what the
tables hold and what the second sync changed. Needs the `warehouse` extra: pip install -e '.[warehouse]'.

With --account-data (scripts/demo.sh passes it, against the second Cyrus, CYRUS_PROFILE=ext), the account
also gets the sample contacts, calendars, events and sieve script (scripts/seed_account.py) over
CardDAV/CalDAV, the summary lists contacts and the next events, and the changes include a new contact, a
changed one and a cancelled event.
"""

from __future__ import annotations

import argparse
import contextlib
import email.policy
import email.utils
import imaplib
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import seed_account
from demo import sample_account

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".local" / "warehouse"
DATABASE = WORK / "jmap.duckdb"
PROGRESS_LOG = WORK / "pyairbyte.log"
HOST = "127.0.0.1"
DELETED = "_ab_cdc_deleted_at"
PRIMARY_KEYS = {"attachments": ("accountid", "emailid", "partid")}  # every other stream: accountid, id

MAILBOX_PATHS = """
with recursive paths(id, path) as (
    select id, name from mailboxes where parentid is null and _ab_cdc_deleted_at is null
    union all
    select m.id, p.path || '/' || m.name from mailboxes m join paths p on m.parentid = p.id
    where m._ab_cdc_deleted_at is null
)
"""

EMAILS_PER_MAILBOX = MAILBOX_PATHS + """
select p.path as mailbox, coalesce(m.role, '') as role, count(e.id) as emails,
       count(e.id) filter (where json_extract(e.keywords, '$."$seen"') is null) as unread
from paths p
join mailboxes m on m.id = p.id
left join (select id, keywords, unnest(json_keys(mailboxids)) as mailbox_id
           from emails where _ab_cdc_deleted_at is null) e on e.mailbox_id = p.id
group by p.path, m.role order by p.path
"""

TOP_SENDERS = """
select json_extract_string("from", '$[0].email') as from_email,
       any_value(json_extract_string("from", '$[0].name')) as from_name, count(*) as emails, max(receivedat) as latest
from emails where _ab_cdc_deleted_at is null
group by from_email order by emails desc, from_email limit 5
"""

# Cyrus's Contact shape; the next birthdays from today, the year ignored.
NEXT_BIRTHDAYS = """
select firstname || ' ' || lastname as name, birthday, json_extract_string(phones, '$[0].value') as phone,
       json_extract_string(addresses, '$[0].locality') as city
from contacts where _ab_cdc_deleted_at is null and birthday > '0000'
order by substr(birthday, 6) < strftime(current_date, '%m-%d'), substr(birthday, 6), name limit 8
"""

# JSCalendar keeps local times and their zone; a recurring event is one row with its rule, shown once.
NEXT_EVENTS = """
select e.start, coalesce(e.timezone, 'floating') as time_zone, e.duration, e.title, c.name as calendar,
       coalesce(json_extract_string(e.recurrencerule, '$.frequency'), '') as repeats,
       coalesce(json_array_length(json_keys(e.participants)), 0) as participants
from calendar_events e left join calendars c on c.id = e.calendarid and c._ab_cdc_deleted_at is null
where e._ab_cdc_deleted_at is null and (e.start >= strftime(current_date, '%Y-%m-%d') or e.recurrencerule is not null)
order by e.start limit 8
"""

QUERY_HINT = "select subject, receivedat from emails where _ab_cdc_deleted_at is null order by receivedat desc limit 5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--user", default="warehouse@example.com")
    parser.add_argument("--password", default="warehouse-password")
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("CYRUS_HTTP_PORT", "18080")))
    parser.add_argument("--imap-port", type=int, default=int(os.environ.get("CYRUS_IMAP_PORT", "11143")))
    parser.add_argument("--account-data", action="store_true",
                        help="also seed and show contacts, calendars, events and a sieve script (the ext Cyrus)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # in order with the tools' output
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    PROGRESS_LOG.write_text("")  # this run's PyAirbyte output only
    ab = import_pyairbyte()

    imap = sample_account(args.user, args.password, args.imap_port)
    origin = f"http://{HOST}:{args.http_port}"  # ignore-https-check: the local Cyrus, on loopback
    if args.account_data:
        seed_account.empty(origin, args.user, args.password)
        seeded = seed_account.seed(origin, args.user, args.password)
        print(f"seeded {len(seeded.contacts)} contacts, a group, 2 calendars with {len(seeded.events)} events and a "
              "sieve script over CardDAV/CalDAV and JMAP")

    heading("PyAirbyte: the connector as a local executable, offline")
    # Without local_executable, PyAirbyte would pip-install the connector's PyPI distribution,
    # airbyte-source-jmap (metadata.yaml remoteRegistries.pypi), whose console script is the same source-jmap.
    executable = Path(sys.executable).with_name("source-jmap")
    if not executable.exists():
        sys.exit(f"{executable} is missing: install airbyte-source-jmap into this venv (pip install -e '.[warehouse]')")
    config = {
        "session_url": f"http://{HOST}:{args.http_port}",  # ignore-https-check: the local Cyrus, on loopback
        "credentials": {"auth_type": "basic", "username": args.user, "password": args.password},
    }
    with pyairbyte_output_to_log():
        source = ab.get_source("source-jmap", local_executable=executable, config=config, streams="*")
        source.check()
    print(f"ab.get_source('source-jmap', local_executable='{shown(executable)}', config=..., streams='*')")
    print(f"check succeeded; streams: {', '.join(source.get_available_streams())}")
    DATABASE.unlink(missing_ok=True)  # a fresh account: start from an empty warehouse
    cache = ab.DuckDBCache(db_path=DATABASE)
    print(f"cache: ab.DuckDBCache(db_path='{shown(DATABASE)}')  (PyAirbyte's progress goes to {shown(PROGRESS_LOG)})")

    heading("first sync: full import into DuckDB")
    timed_read(source, cache)
    print_table(row_counts(cache, source.get_available_streams()))
    print("\nemails per mailbox (live rows: _ab_cdc_deleted_at is null; the connector skips emails only in "
          "trash or junk by default, see exclude_mailboxes)")
    print_table(cache.run_sql_query(EMAILS_PER_MAILBOX))
    print("\ntop senders")
    print_table(cache.run_sql_query(TOP_SENDERS))
    if args.account_data:
        print_account_data(cache)

    heading("changes on the server, over IMAP")
    before = raw_ids_by_key(cache, source.get_available_streams())
    for line in make_changes(imap, args.user):
        print(f"  {line}")
    imap.logout()
    if args.account_data:
        heading("changes on the server, over CardDAV/CalDAV")
        for line in make_dav_changes(seed_account.Dav(origin, args.user, args.password)):
            print(f"  {line}")

    heading("second sync: incremental, from the state PyAirbyte saved in the DuckDB file")
    timed_read(source, cache)
    print_changes(cache, before)
    print("\ntables after the second sync")
    print_table(row_counts(cache, source.get_available_streams()))
    print_deletion_behaviour(cache)

    heading("query it afterwards")
    print(f"  .venv/bin/python -c \"import duckdb; db = duckdb.connect('{shown(DATABASE)}', read_only=True); "
          f"db.sql('{QUERY_HINT}').show()\"")
    print(f"  duckdb -readonly {shown(DATABASE)} \"{QUERY_HINT}\"   # with the DuckDB CLI")
    print(f"  tables: {', '.join(source.get_available_streams())} (and PyAirbyte's _airbyte_state, ...)")
    print(f"\n(PyAirbyte part: {time.monotonic() - started:.1f} s)")


def import_pyairbyte() -> ModuleType:
    """PyAirbyte reads these settings when it is imported: offline (no registry, no telemetry), files here."""
    os.environ["AIRBYTE_OFFLINE_MODE"] = "1"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("AIRBYTE_PROJECT_DIR", str(WORK))
    os.environ.setdefault("AIRBYTE_LOGGING_ROOT", str(WORK / "logs"))
    os.environ.setdefault("NO_LIVE_PROGRESS", "1")
    # Its Google client libraries warn that they will drop Python 3.11 in 2027.
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import airbyte
    except ImportError:
        sys.exit("PyAirbyte is not installed: .venv/bin/pip install -e '.[warehouse]'")
    return airbyte


@contextlib.contextmanager
def pyairbyte_output_to_log() -> Iterator[None]:
    """PyAirbyte prints a progress report per read; keep it in a file and show it only on failure."""
    with PROGRESS_LOG.open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            yield
        except Exception:
            log.flush()
            print("".join(PROGRESS_LOG.read_text().splitlines(keepends=True)[-30:]), file=sys.__stderr__)
            raise


def timed_read(source: Any, cache: Any) -> None:
    started = time.monotonic()
    with pyairbyte_output_to_log():
        result = source.read(cache=cache)
    print(f"source.read(cache=cache): {result.processed_records} records in {time.monotonic() - started:.1f} s")


def print_account_data(cache: Any) -> None:
    [count] = cache.run_sql_query("select count(*) as n from contacts where _ab_cdc_deleted_at is null")
    print(f"\ncontacts ({count['n']}): the next birthdays")
    print_table(cache.run_sql_query(NEXT_BIRTHDAYS))
    print("\nnext events (from today; a recurring series once, with its rule)")
    print_table(cache.run_sql_query(NEXT_EVENTS))


def make_dav_changes(dav: seed_account.Dav) -> list[str]:
    """A new contact, a changed one and a cancelled event, as a phone or a calendar app would send them."""
    uid, vcard = seed_account.contact_vcard(900)
    dav.put_vcard(uid, vcard)
    dav.put_vcard(*seed_account.contact_vcard(1, note="Neue Nummer ab März"))
    dav.delete_event("Default", "event-dentist")
    return [f"added    contact {uid}", "changed  contact contact-0001 (a note)", "deleted  event event-dentist"]


def row_counts(cache: Any, streams: list[str]) -> list[dict[str, Any]]:
    rows = []
    for stream in streams:
        [counts] = cache.run_sql_query(
            f"select count(*) as total, count(*) filter (where {DELETED} is null) as live from {stream}"
        )
        rows.append({"table": stream, "rows": counts["total"], "live": counts["live"],
                     "deleted": counts["total"] - counts["live"]})
    return rows


def key_columns(stream: str) -> tuple[str, ...]:
    return PRIMARY_KEYS.get(stream, ("accountid", "id"))


def raw_ids_by_key(cache: Any, streams: list[str]) -> dict[str, dict[tuple[Any, ...], str]]:
    """Per table, the PyAirbyte row id of each primary key: a row the next sync writes gets a new one."""
    snapshot = {}
    for stream in streams:
        keys = key_columns(stream)
        rows = cache.run_sql_query(f"select {', '.join(keys)}, _airbyte_raw_id from {stream}")
        snapshot[stream] = {tuple(row[key] for key in keys): row["_airbyte_raw_id"] for row in rows}
    return snapshot


def print_changes(cache: Any, before: dict[str, dict[tuple[Any, ...], str]]) -> None:
    mailbox_paths = {row["id"]: row["path"] for row in cache.run_sql_query(MAILBOX_PATHS + "select * from paths")}
    print("rows the second sync wrote (PyAirbyte merged them by primary key):")
    for stream, earlier in before.items():
        keys = key_columns(stream)
        changed = [row for row in cache.run_sql_query(f"select * from {stream}")
                   if earlier.get(tuple(row[key] for key in keys)) != row["_airbyte_raw_id"]]
        for row in changed:
            key = tuple(row[key] for key in keys)
            kind = "deleted" if row[DELETED] else ("updated" if key in earlier else "new")
            shown_key = "/".join(str(part) for part in key[1:])
            print(f"  {stream:<15} {kind:<8} {shown_key:<34} {describe(stream, row, mailbox_paths)}")
        if not changed:
            print(f"  {stream:<15} (nothing)")


def describe(stream: str, row: dict[str, Any], mailbox_paths: dict[str, str]) -> str:
    if row[DELETED]:
        others = [name for name, value in row.items() if value is not None and not name.startswith("_")
                  and name not in key_columns(stream)]
        return f"{DELETED}={row[DELETED]:%H:%M:%S}, other columns {others or 'null'}"
    if stream == "emails":
        where = ", ".join(mailbox_paths.get(mailbox, mailbox) for mailbox in as_json(row["mailboxids"]))
        keywords = " ".join(sorted(as_json(row["keywords"]) or {}))
        return f"{(row['subject'] or '')[:30]!r} in {where}; keywords {keywords or '-'}"
    if stream == "mailboxes":
        return f"{mailbox_paths.get(row['id'], row['name'])}: {row['totalemails']} emails, {row['unreademails']} unread"
    if stream == "threads":
        return f"{len(as_json(row['emailids']) or [])} email(s)"
    if stream == "attachments":
        return f"{row['name']} ({row['type']}, {row['size']} bytes)"
    if stream == "contacts":
        return f"{row['firstname']} {row['lastname']}" + (f"; notes {row['notes']!r}" if row.get("notes") else "")
    if stream in ("calendar_events", "sieve_scripts", "calendars"):
        return str(row.get("title") or row.get("name") or "")
    return str(row.get("email") or row.get("name") or "")


def as_json(value: Any) -> Any:
    """JSON columns come back parsed from DuckDB through SQLAlchemy, but as text through other drivers."""
    return json.loads(value) if isinstance(value, str) else value


def print_deletion_behaviour(cache: Any) -> None:
    [deleted] = cache.run_sql_query(
        f"select count(*) as n, count(subject) as with_subject from emails where {DELETED} is not null"
    )
    print(f"\ndeletions: PyAirbyte's DuckDB cache does not apply {DELETED}; it merges the deletion record by "
          f"primary key,\nso each destroyed email stays as a row with {DELETED} set and its other columns null "
          f"({deleted['n']} such email row(s), {deleted['with_subject']} with a subject).\n"
          f"Filter them out: ... where {DELETED} is null")


def make_changes(imap: imaplib.IMAP4, user: str) -> list[str]:
    """Flag one message, move one, expunge one, append one: each kind of change JMAP reports."""
    imap.select("INBOX")
    uids = imap.uid("SEARCH", "ALL")[1][0].split()
    subjects = [subject_of(imap, uid) for uid in uids[:3]]
    imap.uid("STORE", uids[0], "+FLAGS", r"(\Flagged)")
    imap.uid("MOVE", uids[1], "Archive")
    imap.uid("STORE", uids[2], "+FLAGS", r"(\Deleted)")
    imap.expunge()
    message = (
        f"From: New Sender <new@example.org>\r\nTo: {user}\r\nSubject: Arrived after the first sync\r\n"
        f"Date: {email.utils.formatdate()}\r\nMessage-ID: <warehouse-{time.time_ns()}@example.org>\r\n\r\n"
        "Hello again.\r\n"
    )
    imap.append("INBOX", "", None, message.encode())
    return [f"flagged  {subjects[0]!r}", f"moved    {subjects[1]!r} from INBOX to Archive",
            f"expunged {subjects[2]!r} from INBOX", "appended 'Arrived after the first sync' to INBOX"]


def subject_of(imap: imaplib.IMAP4, uid: bytes) -> str:
    header = imap.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1]
    parsed = email.message_from_bytes(header, policy=email.policy.default)
    return str(parsed["Subject"] or "")


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("  (no rows)")
        return
    cells = [[format_cell(value) for value in row.values()] for row in rows]
    widths = [max(len(name), *(len(line[index]) for line in cells)) for index, name in enumerate(rows[0])]
    print("  " + "  ".join(name.ljust(width) for name, width in zip(rows[0], widths, strict=True)))
    for line in cells:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def format_cell(value: Any) -> str:
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def heading(text: str) -> None:
    print(f"\n== {text}")


if __name__ == "__main__":
    main()
