"""The main job, end to end against the local Cyrus: check, discover, a full read, changes, an incremental read.

Runs the connector as Airbyte would (`python main.py ...`) and prints what each step brought. raw_messages
and attachments run in file mode, as with Airbyte's file transfer: each message (the seed includes a 17 MB
one) and each attachment lands as a file in STAGING, and the summary lists a few of them.
"""

from __future__ import annotations

import argparse
import email.utils
import imaplib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import seed_mail

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".local" / "demo"
STAGING = WORK / "staging"  # AIRBYTE_STAGING_DIRECTORY: where Airbyte's file transfer has a source put its files
HOST = "127.0.0.1"
STREAMS = ("mailboxes", "emails", "threads", "identities", "attachments", "raw_messages")
# Configured with include_files: a file per message instead of base64 in a row, a file per attachment.
FILE_STREAMS = ("raw_messages", "attachments")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", default="demo@example.com")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("CYRUS_HTTP_PORT", "18080")))
    parser.add_argument("--imap-port", type=int, default=int(os.environ.get("CYRUS_IMAP_PORT", "11143")))
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    # The files of an earlier demo would be counted with this one's. The CDK writes to /tmp/airbyte-file-transfer
    # when the staging directory does not exist, so it is made before the connector runs.
    shutil.rmtree(STAGING, ignore_errors=True)
    STAGING.mkdir()
    os.environ["AIRBYTE_STAGING_DIRECTORY"] = str(STAGING)
    imap = sample_account(args.user, args.password, args.imap_port, large=True)

    config = {
        "session_url": f"http://{HOST}:{args.http_port}",  # ignore-https-check: the local Cyrus, on loopback
        "credentials": {"auth_type": "basic", "username": args.user, "password": args.password},
        "include_raw_message": True,  # offers raw_messages
    }
    config_path = write_json("config.json", config)
    catalog_path = write_json("catalog.json", catalog())

    heading("check  (session_url is the bare origin: found through /.well-known/jmap)")
    status = connector("check", "--config", config_path)
    print(json.dumps(only(status, "CONNECTION_STATUS")[0]["connectionStatus"]))

    heading("discover")
    for stream in only(connector("discover", "--config", config_path), "CATALOG")[0]["catalog"]["streams"]:
        print(f"{stream['name']:<15} sync modes {', '.join(stream['supported_sync_modes']):<25} "
              f"primary key {stream['source_defined_primary_key']}  cursor {stream['default_cursor_field']}"
              + ("  file-based" if stream.get("is_file_based") else ""))

    heading("read: first sync (full import)")
    first = connector("read", "--config", config_path, "--catalog", catalog_path)
    summarize_full(first)
    state_path = write_json("state.json", final_states(first))

    heading("changes on the server, over IMAP")
    for line in make_changes(imap):
        print(f"  {line}")
    imap.logout()

    heading("read: second sync (incremental, from the saved state)")
    second = connector("read", "--config", config_path, "--catalog", catalog_path, "--state", state_path)
    summarize_changes(second, mailbox_names(first))
    write_json("state.json", final_states(second))
    heading("files")
    print(f"config, catalog and state are in {WORK.relative_to(ROOT)}/, the files in "
          f"{STAGING.relative_to(ROOT)}/; run a step by hand with e.g.\n"
          f"  AIRBYTE_STAGING_DIRECTORY={STAGING.relative_to(ROOT)} .venv/bin/python main.py read "
          f"--config {WORK.relative_to(ROOT)}/config.json --catalog {WORK.relative_to(ROOT)}/catalog.json "
          f"--state {WORK.relative_to(ROOT)}/state.json")


def connector(*arguments: str) -> list[dict[str, Any]]:
    command = [sys.executable, str(ROOT / "main.py"), *arguments]
    print("$ python main.py " + " ".join(str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a
                                         for a in arguments))
    started = time.monotonic()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    messages = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0:
        for message in only(messages, "TRACE"):
            print("  error:", message["trace"].get("error", {}).get("message"))
        sys.exit(f"the connector failed (exit code {completed.returncode})")
    print(f"  ({time.monotonic() - started:.1f} s, {len(messages)} messages)")
    return messages


def summarize_full(messages: list[dict[str, Any]]) -> None:
    mailboxes = records(messages, "mailboxes")
    emails = records(messages, "emails")
    print("records per stream: " + ", ".join(f"{stream} {len(records(messages, stream))}" for stream in STREAMS))
    by_id = {m["id"]: m for m in mailboxes}
    print("\nmailbox                     role      emails  unread")
    for mailbox in sorted(mailboxes, key=lambda m: path_of(m, by_id)):
        print(f"{path_of(mailbox, by_id):<27} {mailbox.get('role') or '':<9} "
              f"{mailbox['totalEmails']:>6}  {mailbox['unreadEmails']:>6}")
    print("\nreceived              from                       subject")
    for message in emails[-8:]:
        sender = (message.get("from") or [{}])[0]
        print(f"{message['receivedAt']:<21} {(sender.get('name') or sender.get('email') or '')[:26]:<26} "
              f"{(message.get('subject') or '')[:48]}")
    print(f"(the last 8 of {len(emails)}, in receivedAt order)")
    summarize_files(messages)
    print_states(messages)


def summarize_files(messages: list[dict[str, Any]]) -> None:
    """What file mode left in the staging directory, and that each record's file is there, whole."""
    with_files = [m for m in only(messages, "RECORD") if m["record"].get("file_reference")]
    references = [m["record"]["file_reference"] for m in with_files]
    on_disk = [path for path in STAGING.rglob("*") if path.is_file()]
    for reference in references:
        if Path(reference["staging_file_url"]).stat().st_size != reference["file_size_bytes"]:
            sys.exit(f"{reference['staging_file_url']} is not the size its record says")
    by_stream = ", ".join(f"{stream} {sum(m['record']['stream'] == stream for m in with_files)}"
                          for stream in FILE_STREAMS)
    print(f"\nfile mode: records with a file reference: {by_stream}; {len(on_disk)} files, "
          f"{sum(path.stat().st_size for path in on_disk):,} bytes in {STAGING.relative_to(ROOT)}/")
    print("      bytes  file (the 5 largest, relative to the staging directory)")
    for reference in sorted(references, key=lambda r: r["file_size_bytes"], reverse=True)[:5]:
        print(f"{reference['file_size_bytes']:>11,}  {reference['source_file_relative_path']}")


def summarize_changes(messages: list[dict[str, Any]], mailbox_path: dict[str, str]) -> None:
    files = {(m["record"]["stream"], key(m["record"]["data"])): m["record"]["file_reference"]
             for m in only(messages, "RECORD") if m["record"].get("file_reference")}
    for stream in STREAMS:
        rows = records(messages, stream)
        deleted = [r for r in rows if r.get("_ab_cdc_deleted_at")]
        print(f"{stream}: {len(rows)} records ({len(rows) - len(deleted)} new or updated, {len(deleted)} deleted)")
        for row in rows:
            if row.get("_ab_cdc_deleted_at"):
                print(f"  deleted   {key(row)}")
            elif (stream, key(row)) in files:
                reference = files[stream, key(row)]
                print(f"  upserted  {key(row)}  file {reference['source_file_relative_path']} "
                      f"({reference['file_size_bytes']:,} bytes)")
            elif stream == "emails":
                where = ", ".join(mailbox_path.get(mailbox_id, mailbox_id) for mailbox_id in row["mailboxIds"])
                print(f"  upserted  {row['id']}  {(row.get('subject') or '')[:30]:<30} in {where:<8} "
                      f"keywords {' '.join(sorted(row.get('keywords') or {}))}")
            elif stream == "mailboxes":
                print(f"  upserted  {row['id']}  {row['name']:<16} emails {row['totalEmails']}")
            elif stream == "threads":
                print(f"  upserted  {row['id']}  {len(row['emailIds'])} emails")
            else:
                print(f"  upserted  {row.get('id') or row['emailId']}")
    print_states(messages)


def print_states(messages: list[dict[str, Any]]) -> None:
    for state in final_states(messages):
        print(f"state {state['stream']['stream_descriptor']['name']}: {json.dumps(state['stream']['stream_state'])}")


def make_changes(imap: Any) -> list[str]:
    """Flag one message, move one, expunge one, append one: each kind of change JMAP reports."""
    done = []
    imap.select("INBOX")
    uids = imap.uid("SEARCH", "ALL")[1][0].split()
    imap.uid("STORE", uids[0], "+FLAGS", r"(\Flagged)")
    done.append(f"flagged INBOX message uid {uids[0].decode()}")
    imap.uid("MOVE", uids[1], "Archive")
    done.append(f"moved INBOX message uid {uids[1].decode()} to Archive")
    imap.uid("STORE", uids[2], "+FLAGS", r"(\Deleted)")
    imap.expunge()
    done.append(f"expunged INBOX message uid {uids[2].decode()}")
    message = (
        "From: New Sender <new@example.org>\r\nTo: demo@example.com\r\nSubject: Arrived after the first sync\r\n"
        f"Date: {email.utils.formatdate()}\r\nMessage-ID: <demo-{time.time_ns()}@example.org>\r\n\r\nHello again.\r\n"
    )
    imap.append("INBOX", "", None, message.encode())
    done.append("appended a new message to INBOX")
    return done


def sample_account(user: str, password: str, imap_port: int, large: bool = False) -> imaplib.IMAP4:
    """The user, with the same freshly seeded sample mail on every run (and the 17 MB message when `large`);
    an IMAP connection to it."""
    heading(f"Sample mailbox {user} on the local Cyrus")
    subprocess.run([str(ROOT / "scripts" / "cyrus.sh"), "adduser", user, password], check=True)
    imap = seed_mail.open_imap(HOST, imap_port, user, password)
    empty_account(imap)
    seeded = seed_mail.seed(HOST, imap_port, user, password, large=large)
    largest = max(len(message.raw) for message in seeded)
    print(f"seeded {len(seeded)} messages into {len(seed_mail.SAMPLE_MAILBOXES)} mailboxes over IMAP"
          + (f", the largest {largest:,} bytes" if large else ""))
    return imap


def empty_account(imap: Any) -> None:
    """Start each demo from the same mailbox: delete what an earlier run left."""
    names = [line.decode().rsplit(' "/" ', 1)[-1] for line in imap.list()[1] if line]
    for name in sorted(names, key=len, reverse=True):
        if name.strip('"').upper() != "INBOX":
            imap.delete(name)
    imap.select("INBOX")
    imap.store("1:*", "+FLAGS", r"(\Deleted)")
    imap.expunge()


def mailbox_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    by_id = {m["id"]: m for m in records(messages, "mailboxes")}
    return {mailbox_id: path_of(mailbox, by_id) for mailbox_id, mailbox in by_id.items()}


def path_of(mailbox: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    parent = by_id.get(mailbox.get("parentId") or "")
    return f"{path_of(parent, by_id)}/{mailbox['name']}" if parent else mailbox["name"]


def records(messages: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"]["data"] for m in only(messages, "RECORD") if m["record"]["stream"] == stream]


def key(row: dict[str, Any]) -> str:
    """A record's key as the summaries show it: an email's id, or an attachment's email and part."""
    return row.get("id") or f"{row['emailId']} part {row['partId']}"


def final_states(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest = {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"] for m in only(messages, "STATE")}
    return list(latest.values())


def only(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def catalog() -> dict[str, Any]:
    return {"streams": [
        {"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
         "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
         "cursor_field": ["_ab_cdc_updated_at"],
         "primary_key": [["accountId"], ["emailId"], ["partId"]] if name == "attachments" else [["accountId"], ["id"]],
         **({"include_files": True} if name in FILE_STREAMS else {})}
        for name in STREAMS
    ]}


def write_json(name: str, content: Any) -> str:
    path = WORK / name
    path.write_text(json.dumps(content, indent=2))
    return str(path)


def heading(text: str) -> None:
    print(f"\n== {text}")


if __name__ == "__main__":
    main()
