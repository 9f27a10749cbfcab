"""Threads, identities, several accounts, mailbox filters, progress and Bearer auth against the real Cyrus."""

from __future__ import annotations

import base64
import email
import json
import time
from pathlib import Path
from typing import Any

from source_jmap.jmap import MAIL

from .bearer_proxy import bearer_gateway
from .conftest import HTTP_PORT, IMAP_PORT, MailAccount, new_account, seed_mail
from .connector import Run, run_connector
from .test_raw_messages import assert_equal_to_imap_body
from .test_read import mailbox_paths

ALL_STREAMS = ["mailboxes", "emails", "threads", "identities"]


def read(config: dict[str, Any], tmp_path: Path, streams: list[str] | None = None,
         state: list[dict[str, Any]] | None = None) -> Run:
    run = run_connector("read", tmp_path, config, streams or ALL_STREAMS, state)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in records}


def test_threads_group_every_email_and_change_when_a_reply_arrives(account: MailAccount, tmp_path: Path) -> None:
    config = account.config(exclude_mailboxes=[])
    first = read(config, tmp_path, ["emails", "threads"])
    emails = first.records("emails")
    threads = by_id(first.records("threads"))
    assert sorted(threads) == sorted({e["threadId"] for e in emails})
    for email_record in emails:
        assert email_record["id"] in threads[email_record["threadId"]]["emailIds"]
    assert any(len(thread["emailIds"]) >= 3 for thread in threads.values())

    parent = next(e for e in emails if not e.get("inReplyTo") and not (e.get("subject") or "Re:").startswith("Re:"))
    reply = (f"From: someone@example.org\r\nTo: {account.user}\r\nSubject: Re: {parent['subject']}\r\n"
             f"Message-ID: <reply-{time.time_ns()}@example.org>\r\nIn-Reply-To: <{parent['messageId'][0]}>\r\n"
             f"References: <{parent['messageId'][0]}>\r\n\r\nAgreed.\r\n")
    imap = account.imap()
    imap.append("INBOX", "", None, email.message_from_string(reply).as_bytes())
    imap.logout()

    second = read(config, tmp_path, ["emails", "threads"], first.final_state())
    [new_email] = second.records("emails")
    [changed_thread] = second.records("threads")
    assert changed_thread["id"] == parent["threadId"] == new_email["threadId"]
    assert changed_thread["emailIds"] == [*threads[parent["threadId"]]["emailIds"], new_email["id"]]


def test_identities_are_read_whole_again_where_the_server_has_no_identity_changes(
    account: MailAccount, tmp_path: Path
) -> None:
    first = read(account.config(), tmp_path, ["identities"])
    [identity] = first.records("identities")
    assert identity["email"] == account.user and identity["accountId"] == account.user
    second = read(account.config(), tmp_path, ["identities"], first.final_state())
    def content(run: Run) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "_ab_cdc_updated_at"} for r in run.records("identities")]

    assert content(second) == content(first)
    assert "the server has no Identity/changes; reading it whole" in second.log_text


def test_full_read_emits_a_progress_estimate_per_stream(account: MailAccount, tmp_path: Path) -> None:
    run = read(account.config(), tmp_path, ["emails"])
    estimates = [m["trace"]["estimate"] for m in run.of_type("TRACE") if m["trace"]["type"] == "ESTIMATE"]
    assert estimates == [{"name": "emails", "type": "STREAM", "row_estimate": len(run.records("emails"))}]
    assert f"{len(run.records('emails'))} of {len(run.records('emails'))} imported" in run.log_text


def test_two_accounts_are_read_with_separate_states(cyrus: None, tmp_path: Path) -> None:
    reader, sharer = new_account(), new_account()
    imap = sharer.imap()
    assert imap.setacl("INBOX", reader.user, "lrs")[0] == "OK"
    config = reader.config(read_all_accounts=True)
    first = read(config, tmp_path, ["emails", "mailboxes"])
    per_account = {acc: [r for r in first.records("emails") if r["accountId"] == acc] for acc in
                   (reader.user, sharer.user)}
    assert per_account[reader.user] and per_account[sharer.user]
    assert set(first.stream_state("emails")["accounts"]) == {reader.user, sharer.user}

    imap.select("INBOX")
    imap.store("1", "+FLAGS", r"(\Flagged)")
    imap.logout()
    second = read(config, tmp_path, ["emails", "mailboxes"], first.final_state())
    [changed] = second.records("emails")
    assert changed["accountId"] == sharer.user and changed["keywords"].get("$flagged")
    states_before, states_after = first.stream_state("emails")["accounts"], second.stream_state("emails")["accounts"]
    assert states_after[reader.user] == states_before[reader.user]
    assert states_after[sharer.user] != states_before[sharer.user]


def test_mailbox_filters_select_emails_and_a_move_across_the_boundary_is_consistent(
    account: MailAccount, tmp_path: Path
) -> None:
    included = read(account.config(mailboxes=["Archive/2023", "inbox"]), tmp_path, ["emails", "mailboxes"])
    paths = mailbox_paths(included.records("mailboxes"))
    expected = {s.message_id.strip("<>") for s in account.seeded if s.mailbox in ("Archive/2023", "INBOX")}
    assert {r["messageId"][0] for r in included.records("emails")} == expected

    first = read(account.config(), tmp_path, ["emails"])
    in_trash = {s.message_id.strip("<>") for s in account.seeded if s.mailbox == "Trash"}
    assert not in_trash & {r["messageId"][0] for r in first.records("emails")}
    imap = account.imap()
    imap.select("INBOX")
    moved_out_uid = imap.uid("SEARCH", "ALL")[1][0].split()[0]
    imap.uid("MOVE", moved_out_uid, "Trash")
    imap.select("Trash")
    trash_uids = imap.uid("SEARCH", "ALL")[1][0].split()
    imap.uid("MOVE", trash_uids[0], "INBOX")
    imap.logout()

    second = read(account.config(), tmp_path, ["emails"], first.final_state())
    records = second.records("emails")
    deleted = [r for r in records if r.get("_ab_cdc_deleted_at")]
    upserted = [r for r in records if not r.get("_ab_cdc_deleted_at")]
    assert len(deleted) == 1 and deleted[0]["id"] in {r["id"] for r in first.records("emails")}
    assert len(upserted) == 1 and upserted[0]["messageId"][0] in in_trash
    assert [paths.get(mailbox_id) for mailbox_id in upserted[0]["mailboxIds"]] == ["INBOX"]


def test_bearer_token_auth_reads_the_real_server_through_a_token_gateway(
    account: MailAccount, tmp_path: Path
) -> None:
    token = "tok-integration-5150"
    basic = read(account.config(), tmp_path, ["emails"])
    with bearer_gateway(token, account.user, account.password, HTTP_PORT) as origin:
        bearer_config = account.config(session_url=origin, credentials={"auth_type": "bearer", "api_token": token})
        check = run_connector("check", tmp_path, bearer_config)
        bearer = read(bearer_config, tmp_path, ["emails"])
        wrong = run_connector("check", tmp_path, {**bearer_config, "credentials": {"auth_type": "bearer",
                                                                                    "api_token": "expired"}})
    assert check.connection_status == {"status": "SUCCEEDED"}
    assert sorted(r["id"] for r in bearer.records("emails")) == sorted(r["id"] for r in basic.records("emails"))
    assert wrong.connection_status["message"].startswith("Authentication failed (HTTP 401)")
    assert "with Bearer token auth" in wrong.connection_status["message"]


def test_attachments_match_the_email_bodies_and_disappear_with_their_email(
    account: MailAccount, tmp_path: Path
) -> None:
    config = account.config(exclude_mailboxes=[])
    first = read(config, tmp_path, ["emails", "attachments"])
    expected = sorted((e["id"], part["partId"], part.get("name")) for e in first.records("emails")
                      for part in e.get("attachments") or [])
    attachments = first.records("attachments")
    assert sorted((a["emailId"], a["partId"], a.get("name")) for a in attachments) == expected
    assert any(a.get("name") == "Übersicht 2023.pdf" for a in attachments)

    doomed = next(e for e in first.records("emails") if len(e.get("attachments") or []) >= 1)
    imap = account.imap()
    for mailbox in ("INBOX", "Archive", "Archive/2023", "Sent", "Reçus/Factures", "Trash", "Junk", "Drafts"):
        imap.select(seed_mail.quote_mailbox(mailbox))
        found = imap.search(None, "HEADER", "Message-ID", doomed["messageId"][0])[1][0].split()
        if found:
            imap.store(found[0], "+FLAGS", r"(\Deleted)")
            imap.expunge()
            break
    imap.logout()
    second = read(config, tmp_path, ["emails", "attachments"], first.final_state())
    gone = second.records("attachments")
    # A deletion for each part id the account's attachments use (the state keeps those, not a map of every
    # email: issue 13, item 18); the doomed email's own parts are among them.
    used = {a["partId"] for a in attachments}
    assert sorted((a["emailId"], a["partId"]) for a in gone) == sorted((doomed["id"], part_id) for part_id in used)
    assert {part["partId"] for part in doomed["attachments"]} <= used
    assert all(a["_ab_cdc_deleted_at"] for a in gone)


def _imap_uid_of(imap: Any, message_id: str) -> bytes:
    """The UID of the seeded message with this Message-ID, its mailbox left selected."""
    for mailbox in ("INBOX", "Archive", "Archive/2023", "Sent", "Reçus/Factures", "Drafts"):
        imap.select(seed_mail.quote_mailbox(mailbox))
        found = imap.uid("SEARCH", "HEADER", "Message-ID", message_id)[1][0].split()
        if found:
            return bytes(found[0])
    raise AssertionError(f"{message_id} not found over IMAP")


def test_attachments_state_is_a_few_part_ids_and_an_email_moved_to_trash_loses_exactly_its_attachments(
    account: MailAccount, tmp_path: Path
) -> None:
    config = account.config()  # trash and junk excluded: the selection filters mailboxes
    first = read(config, tmp_path, ["emails", "attachments"])
    attachments = first.records("attachments")
    memo = first.stream_state("attachments")["accounts"][account.user]["memo"]
    assert set(memo) == {"partIds"} and set(memo["partIds"]) == {a["partId"] for a in attachments}
    largest = max(len(json.dumps(m["state"]["stream"]["stream_state"])) for m in first.of_type("STATE")
                  if m["state"]["stream"]["stream_descriptor"]["name"] == "attachments")
    assert largest < 4096

    with_parts = [e for e in first.records("emails") if e.get("attachments")]
    moved, flagged = with_parts[0], with_parts[1]
    imap = account.imap()
    imap.uid("STORE", _imap_uid_of(imap, flagged["messageId"][0]), "+FLAGS", r"(\Flagged)")
    imap.uid("MOVE", _imap_uid_of(imap, moved["messageId"][0]), "Trash")
    imap.logout()

    second = read(config, tmp_path, ["emails", "attachments"], first.final_state())
    records = sorted((a["emailId"], a["partId"], a.get("_ab_cdc_deleted_at") is not None, a.get("name"))
                     for a in second.records("attachments"))
    assert records == sorted(
        [(moved["id"], part["partId"], True, None) for part in moved["attachments"]]
        + [(flagged["id"], part["partId"], False, part.get("name")) for part in flagged["attachments"]]
    )


def test_raw_messages_are_byte_identical_to_imap_body(account: MailAccount, tmp_path: Path) -> None:
    run = read(account.config(include_raw_message=True, exclude_mailboxes=[]), tmp_path, ["raw_messages", "emails"])
    raw = {r["id"]: base64.b64decode(r["raw_message"]) for r in run.records("raw_messages")}
    assert_equal_to_imap_body(account, run, raw, IMAP_PORT)


def server_mailboxes(account: MailAccount) -> dict[str, dict[str, Any]]:
    """Every mailbox as the server has it now, asked over plain HTTP without the connector."""
    [[_, result, _]] = account.jmap([MAIL], [["Mailbox/get", {"accountId": account.user, "ids": None}, "m"]])
    return {mailbox["id"]: mailbox for mailbox in result["list"]}


def test_mailbox_counts_in_the_destination_equal_the_servers_after_changes_in_threads_across_mailboxes(
    account: MailAccount, tmp_path: Path
) -> None:
    config = account.config(exclude_mailboxes=[])
    first = read(config, tmp_path, ["mailboxes"])
    imap = account.imap()
    subject = f"Budget {time.time_ns()}"
    root = f"<budget-{time.time_ns()}@example.org>"
    for mailbox, message_id, references in (("INBOX", root, ""), ("Archive", f"<re-{time.time_ns()}@x>", root)):
        headers = f"In-Reply-To: {references}\r\nReferences: {references}\r\n" if references else ""
        message = (f"From: bob@example.org\r\nTo: {account.user}\r\nSubject: {'Re: ' if references else ''}"
                   f"{subject}\r\nMessage-ID: {message_id}\r\n{headers}\r\nText.\r\n")
        imap.append(seed_mail.quote_mailbox(mailbox), "", None, message.encode())
    imap.select("INBOX")
    _, found = imap.search(None, "SUBJECT", f'"{subject}"')
    imap.store(found[0].split()[-1], "+FLAGS", "\\Seen")  # the thread is unread in INBOX through its reply only
    second = read(config, tmp_path, ["mailboxes"], first.final_state())
    imap.select(seed_mail.quote_mailbox("Archive"))
    _, found = imap.search(None, "SUBJECT", f'"{subject}"')
    imap.store(found[0].split()[-1], "+FLAGS", "\\Deleted")
    imap.expunge()  # the unread reply in Archive goes: INBOX's unreadThreads drops, and Cyrus lists only Archive
    imap.logout()
    third = read(config, tmp_path, ["mailboxes"], second.final_state())

    destination: dict[str, dict[str, Any]] = {}
    for run in (first, second, third):
        destination |= by_id(run.records("mailboxes"))
    counts = ("totalEmails", "unreadEmails", "totalThreads", "unreadThreads")
    assert {mailbox_id: {key: row[key] for key in counts} for mailbox_id, row in destination.items()} == {
        mailbox_id: {key: mailbox[key] for key in counts} for mailbox_id, mailbox in server_mailboxes(account).items()
    }
