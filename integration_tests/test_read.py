"""Full and incremental reads of a real Cyrus JMAP server, compared with what was put there over IMAP."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
from datetime import UTC
from pathlib import Path
from typing import Any

from .conftest import CYRUS, ORIGIN, MailAccount, new_account, seed_mail
from .connector import Run, run_connector

STREAMS = ["mailboxes", "emails"]


def read(account: MailAccount, tmp_path: Path, state: list[dict[str, Any]] | None = None,
         sync_mode: str = "incremental", **config: Any) -> Run:
    run = run_connector("read", tmp_path, account.config(**config), STREAMS, state, sync_mode)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def mailbox_paths(mailboxes: list[dict[str, Any]]) -> dict[str, str]:
    """Mailbox id -> IMAP-style path ('INBOX', 'Archive/2023')."""
    by_id = {mailbox["id"]: mailbox for mailbox in mailboxes}

    def path(mailbox: dict[str, Any]) -> str:
        name = "INBOX" if mailbox.get("role") == "inbox" else mailbox["name"]
        parent = by_id.get(mailbox.get("parentId") or "")
        return f"{path(parent)}/{name}" if parent else name

    return {mailbox_id: path(mailbox) for mailbox_id, mailbox in by_id.items()}


def keywords_for(flags: tuple[str, ...]) -> dict[str, bool]:
    return {("$" + flag[1:] if flag.startswith("\\") else flag).lower(): True for flag in flags}


def message_id(sample: seed_mail.SampleMessage) -> str:
    return sample.message_id.strip("<>")


def test_full_read_returns_exactly_the_seeded_emails_outside_trash_and_junk(
    account: MailAccount, tmp_path: Path
) -> None:
    run = read(account, tmp_path, sync_mode="full_refresh")
    paths = mailbox_paths(run.records("mailboxes"))
    emails = {record["messageId"][0]: record for record in run.records("emails")}

    kept = [sample for sample in account.seeded if sample.mailbox not in ("Trash", "Junk")]
    assert 0 < len(kept) < len(account.seeded)
    assert sorted(emails) == sorted(message_id(sample) for sample in kept)
    for sample in kept:
        record = emails[message_id(sample)]
        assert record["subject"] == sample.subject
        assert [paths[mailbox_id] for mailbox_id in record["mailboxIds"]] == [sample.mailbox]
        assert record["keywords"] == keywords_for(sample.flags)
        assert record["receivedAt"] == sample.internal_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert record["accountId"] == account.user


def test_full_read_returns_every_mailbox_with_its_counts_and_nesting(account: MailAccount, tmp_path: Path) -> None:
    run = read(account, tmp_path, sync_mode="full_refresh")
    mailboxes = run.records("mailboxes")
    paths = mailbox_paths(mailboxes)
    assert sorted(paths.values()) == sorted(seed_mail.SAMPLE_MAILBOXES)
    for mailbox in mailboxes:
        expected = sum(1 for sample in account.seeded if sample.mailbox == paths[mailbox["id"]])
        assert mailbox["totalEmails"] == expected, paths[mailbox["id"]]
    roles = {paths[mailbox["id"]]: mailbox.get("role") for mailbox in mailboxes}
    assert roles["INBOX"] == "inbox"


def test_email_records_carry_decoded_names_text_bodies_and_threads(account: MailAccount, tmp_path: Path) -> None:
    run = read(account, tmp_path, exclude_mailboxes=[])
    emails = {record["messageId"][0]: record for record in run.records("emails")}
    assert len(emails) == len(account.seeded)
    for sample in account.seeded:
        parsed = email.message_from_bytes(sample.raw, policy=email.policy.default)
        record = emails[message_id(sample)]
        assert sorted(part["name"] for part in record["attachments"] if part.get("name")) == sorted(
            part.get_filename() for part in parsed.iter_attachments() if part.get_filename()
        )
        assert record["hasAttachment"] == sample.has_attachment
        text_part = parsed.get_body(preferencelist=("plain",))
        if text_part is not None and record["textBody"] and record["textBody"][0]["type"] == "text/plain":
            body = record["bodyValues"][record["textBody"][0]["partId"]]
            assert _normalized(body["value"]) == _normalized(text_part.get_content())
            assert body["isTruncated"] is False
        if parsed["In-Reply-To"]:
            parent = emails.get(parsed["In-Reply-To"].strip().strip("<>"))
            if parent:
                assert record["threadId"] == parent["threadId"]
    assert any(re.search(r"[^\x00-\x7f]", record["subject"] or "") for record in emails.values())


def _normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").strip().split("\n"))


def test_incremental_read_after_imap_changes_emits_exactly_the_changed_new_and_deleted_emails(
    account: MailAccount, tmp_path: Path
) -> None:
    first = read(account, tmp_path)
    ids_by_message_id = {record["messageId"][0]: record["id"] for record in first.records("emails")}
    paths = mailbox_paths(first.records("mailboxes"))
    archive_id = next(mailbox_id for mailbox_id, path in paths.items() if path == "Archive")

    imap = account.imap()
    imap.select("INBOX")
    uids = imap.uid("SEARCH", "ALL")[1][0].split()
    flagged, moved, expunged = (ids_by_message_id[_imap_message_id(imap, uid)] for uid in uids[:3])
    imap.uid("STORE", uids[0], "+FLAGS", r"(\Flagged)")
    imap.uid("MOVE", uids[1], "Archive")
    imap.uid("STORE", uids[2], "+FLAGS", r"(\Deleted)")
    imap.expunge()
    new_message = b"From: a@example.org\r\nSubject: new after sync\r\nMessage-ID: <new-1@example.org>\r\n\r\nhi\r\n"
    imap.append("INBOX", "", None, new_message)
    imap.logout()

    second = read(account, tmp_path, first.final_state())
    records = {record["id"]: record for record in second.records("emails")}
    [new_id] = set(records) - {flagged, moved, expunged}
    assert set(records) == {flagged, moved, expunged, new_id}
    assert records[flagged]["keywords"].get("$flagged") is True
    assert records[moved]["mailboxIds"] == {archive_id: True}
    assert records[expunged]["_ab_cdc_deleted_at"] is not None
    assert set(records[expunged]) == {"id", "accountId", "_ab_cdc_updated_at", "_ab_cdc_deleted_at"}
    assert records[new_id]["subject"] == "new after sync"
    assert all(record.get("_ab_cdc_deleted_at") is None for record in records.values() if record["id"] != expunged)

    # Every mailbox comes again after an incremental sync (counts change without Mailbox/changes saying so).
    mailbox_counts = {paths[m["id"]]: m["totalEmails"] for m in second.records("mailboxes")}
    inbox_before = sum(1 for sample in account.seeded if sample.mailbox == "INBOX")
    archive_before = sum(1 for sample in account.seeded if sample.mailbox == "Archive")
    assert set(mailbox_counts) == set(paths.values())
    assert (mailbox_counts["INBOX"], mailbox_counts["Archive"]) == (inbox_before - 1, archive_before + 1)

    third = read(account, tmp_path, second.final_state())
    assert third.records("emails") == []


def without_read_time(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "_ab_cdc_updated_at"}


def _imap_message_id(imap: Any, uid: bytes) -> str:
    data = imap.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")[1][0][1]
    return email.message_from_bytes(data)["Message-ID"].strip().strip("<>")


def test_incremental_read_without_changes_emits_no_records_and_keeps_the_state(
    account: MailAccount, tmp_path: Path
) -> None:
    first = read(account, tmp_path, session_url=ORIGIN)
    second = read(account, tmp_path, first.final_state(), session_url=ORIGIN)
    assert second.records("emails") == []
    assert second.stream_state("emails") == first.stream_state("emails")
    # Mailboxes are read whole after every incremental sync: the same rows again, nothing deleted.
    assert [without_read_time(m) for m in second.records("mailboxes")] == [
        without_read_time(m) for m in first.records("mailboxes")
    ]


def test_start_date_limits_the_import_to_mail_received_since(account: MailAccount, tmp_path: Path) -> None:
    dates = sorted(sample.internal_date for sample in account.seeded)
    cutoff = dates[len(dates) // 2]
    run = read(account, tmp_path, start_date=cutoff.isoformat(), exclude_mailboxes=[])
    expected = {message_id(sample) for sample in account.seeded if sample.internal_date >= cutoff}
    assert {record["messageId"][0] for record in run.records("emails")} == expected


def test_state_older_than_purged_expunges_leads_to_a_full_reimport(cyrus: None, tmp_path: Path) -> None:
    account = new_account()
    first = read(account, tmp_path)
    imap = account.imap()
    imap.select("INBOX")
    imap.store("1", "+FLAGS", r"(\Deleted)")
    imap.expunge()
    imap.logout()
    _purge_expunged()
    second = read(account, tmp_path, first.final_state())
    assert "importing the whole stream again" in second.log_text
    assert len(second.records("emails")) == len(first.records("emails")) - 1


def _purge_expunged() -> None:
    env = dict(line.removeprefix("export ").split("=", 1) for line in
               subprocess.run([str(CYRUS), "env"], capture_output=True, text=True, check=True).stdout.split("\n")
               if line.startswith("export "))
    conf = f"{env['CYRUS_DIR'].strip(chr(39))}/imapd.conf"
    subprocess.run(["runuser", "-u", "cyrus", "--", "/usr/lib/cyrus/bin/cyr_expire", "-C", conf,
                    "-X", "0", "-D", "0", "-E", "0"], check=True, capture_output=True)
