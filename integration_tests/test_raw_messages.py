"""raw_messages against the real Cyrus."""

from __future__ import annotations

import base64
import hashlib
import logging
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from source_jmap.jmap import (
    MAIL,
    BasicCredentials,
    JmapClient,
    JmapServerError,
    blob_get_capability,
    fetch_blobs,
)
from source_jmap.jmap.methods import GetCall, QueryCall
from source_jmap.streams import EmailSelection, downloads
from source_jmap.streams.raw_messages import RawMessageStream
from unit_tests.helpers import path_name
from unit_tests.platform_files import case_folding_clashes, platform_file_record

from .conftest import (
    CYRUS,
    EXT_ENV,
    EXT_IMAP_PORT,
    EXT_ORIGIN,
    HOST,
    IMAP_PORT,
    MailAccount,
    new_account,
    seed_mail,
)
from .connector import Run, run_connector, staging_environment

RAW_PROPERTIES = ["id", "blobId", "size", "receivedAt", "mailboxIds"]

SERVER_NAMES = ["plain", "ext"]
SERVER_IDS = ["downloads (plain Cyrus)", "Blob/get (Cyrus with its extensions)"]
SERVERS = pytest.mark.parametrize("server", SERVER_NAMES, ids=SERVER_IDS)


def seeded_account(request: pytest.FixtureRequest, server: str, large: bool = False) -> tuple[MailAccount, int]:
    """A fresh account with the sample mail (and the 17 MB message when `large`) on the plain or the ext Cyrus,
    and its IMAP port."""
    if server == "plain":
        request.getfixturevalue("cyrus")
        return new_account(large=large), IMAP_PORT
    request.getfixturevalue("ext_cyrus")
    user, password = f"it-{uuid.uuid4().hex[:12]}@example.com", f"Pw-{uuid.uuid4().hex}"
    subprocess.run([str(CYRUS), "adduser", user, password], check=True, capture_output=True, env=EXT_ENV)
    seeded = seed_mail.seed(HOST, EXT_IMAP_PORT, user, password, large=large)
    return MailAccount(user, password, seeded, EXT_ORIGIN), EXT_IMAP_PORT


def page_with_a_missing_blob(
    request: pytest.FixtureRequest, server: str, destroyed: bool
) -> tuple[JmapClient, str, list[dict[str, Any]]]:
    """Three INBOX emails as a page's Email/get gave them, the second with a blob the server does not have; with
    `destroyed`, the second is also an email the server does not have (destroyed after the page's Email/get).

    Cyrus expunges lazily (expunge_mode delayed): an expunged message's blob still downloads until cyr_expire runs,
    which other tests' server must not be made to do. Ids of the same shape that name nothing are what the server
    answers for an email and a blob that are gone: Email/get `notFound`, and HTTP 404.
    """
    account, _ = seeded_account(request, server)
    client = JmapClient(account.config()["session_url"], BasicCredentials(account.user, account.password))
    account_id = client.session.primary_accounts[MAIL]
    inbox = [sample for sample in account.seeded if sample.mailbox == "INBOX"][:3]
    query_call = QueryCall("Email", account_id, "q", filter={"inMailboxOtherThan": []})
    query = query_call.call()
    get = GetCall("Email", account_id, query_call.ids_ref(), "g", properties=[*RAW_PROPERTIES, "messageId"]).call()
    by_message_id = {e["messageId"][0]: e for e in client.call([query, get], [MAIL])[get]["list"]}
    emails = [by_message_id[sample.message_id.strip("<>")] for sample in inbox]
    emails[1] = {**emails[1], "blobId": "G" + "0" * (len(emails[1]["blobId"]) - 1)}
    if destroyed:
        emails[1]["id"] = "M" + "0" * (len(emails[1]["id"]) - 1)
    if (capability := blob_get_capability(client.session, account_id)) is not None:
        # Cyrus with its extensions: raw_messages asks the three in one Blob/get, which brings all but the missing
        # blob; that one is downloaded, and answers HTTP 404. On the plain Cyrus every message is downloaded.
        blobs = fetch_blobs(client, account_id, capability, [email["blobId"] for email in emails],
                            sum(email["size"] for email in emails))
        assert [blobs.content(e["blobId"], e["size"]) is not None for e in emails] == [True, False, True]
    return client, account_id, emails


@SERVERS
def test_an_email_destroyed_before_its_download_is_left_out_of_raw_messages_with_a_log_line(
    request: pytest.FixtureRequest, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, account_id, emails = page_with_a_missing_blob(request, server, destroyed=True)
    stream = RawMessageStream(client, lambda: [account_id], EmailSelection(client, None, [], []), 10**9)
    stream._start_ledger(account_id, None)  # as a read of the account does
    with caplog.at_level(logging.INFO):
        records = list(stream._records_of(account_id, emails, "2026-01-01T00:00:00Z"))
    assert [record["id"] for record in records] == [emails[0]["id"], emails[2]["id"]]
    assert all(record["raw_message"] for record in records)
    assert (f"the message of email {emails[1]['id']} (blob {emails[1]['blobId']}) answered HTTP 404 and the email "
            "is gone (Email/get: notFound)") in caplog.text


@SERVERS
def test_an_email_that_exists_but_whose_download_answers_404_fails_the_read_in_one_line(
    request: pytest.FixtureRequest, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18, item 3: such an email was left out at exit 0, and no later /changes brings it."""
    monkeypatch.setattr(downloads, "MISSING_BLOB_WAIT_SECONDS", 0.0)
    client, account_id, emails = page_with_a_missing_blob(request, server, destroyed=False)
    stream = RawMessageStream(client, lambda: [account_id], EmailSelection(client, None, [], []), 10**9)
    stream._start_ledger(account_id, None)  # as a read of the account does
    with pytest.raises(JmapServerError) as failed:
        list(stream._records_of(account_id, emails, "2026-01-01T00:00:00Z"))
    assert str(failed.value) == (
        f"raw_messages: account {account_id}: the message of email {emails[1]['id']} (blob {emails[1]['blobId']}) "
        f"answered HTTP 404 to each of {downloads.MISSING_BLOB_ATTEMPTS} downloads while Email/get still finds the "
        "email: the server does not serve its bytes; the sync stops rather than leave it out"
    )


def read_raw(account: MailAccount, tmp_path: Path, include_files: bool,
             state: list[dict[str, Any]] | None = None) -> Run:
    """A read of raw_messages and emails; in file mode the staging directory is tmp_path/staging."""
    config = account.config(include_raw_message=True, exclude_mailboxes=[], max_raw_message_bytes=32 << 20)
    run = run_connector("read", tmp_path, config, ["raw_messages", "emails"], state,
                        files=["raw_messages"] if include_files else [],
                        env=staging_environment(tmp_path / "staging"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def raw_bytes(run: Run, include_files: bool, staging: Path) -> dict[str, bytes]:
    """Each email's raw bytes as the run delivered them: from its file, or from the row."""
    if not include_files:
        rows = run.records("raw_messages")
        assert all(r["sha256"] == hashlib.sha256(base64.b64decode(r["raw_message"])).hexdigest() for r in rows)
        return {r["id"]: base64.b64decode(r["raw_message"]) for r in rows}
    delivered: dict[str, bytes] = {}
    for line in run.lines_of("raw_messages"):
        record = platform_file_record(line, staging)  # the contract, and sha256 is the file's
        reference = record.file_reference
        assert reference is not None and reference.source_file_relative_path is not None
        path = staging / reference.source_file_relative_path
        assert path.name == f"{path_name(record.data['id'])}.eml"  # the message's own file, never a temporary one
        assert reference.file_size_bytes == record.data["size"]
        assert "raw_message" not in record.data
        delivered[record.data["id"]] = path.read_bytes()
    assert case_folding_clashes(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file()) == []
    return delivered


def assert_equal_to_imap_body(account: MailAccount, run: Run, delivered: dict[str, bytes], imap_port: int) -> None:
    message_ids = {r["messageId"][0]: r["id"] for r in run.records("emails")}
    assert len(delivered) == len(account.seeded)
    imap = seed_mail.open_imap(HOST, imap_port, account.user, account.password)
    for sample in account.seeded:
        imap.select(seed_mail.quote_mailbox(sample.mailbox), readonly=True)
        [uid] = imap.uid("SEARCH", "HEADER", "Message-ID", sample.message_id)[1][0].split()
        body = imap.uid("FETCH", uid, "(BODY.PEEK[])")[1][0][1]
        assert delivered[message_ids[sample.message_id.strip("<>")]] == body == sample.raw
    imap.logout()


@pytest.fixture(params=SERVER_NAMES, ids=SERVER_IDS)
def raw_account(request: pytest.FixtureRequest) -> tuple[MailAccount, int]:
    """A fresh account with the sample mail and the seed's 17 MB message, on either Cyrus; and its IMAP port."""
    return seeded_account(request, request.param, large=True)


@pytest.mark.parametrize("include_files", [True, False], ids=["file mode", "row mode"])
def test_raw_messages_equal_imap_body_for_every_message_on_both_servers_in_file_and_row_mode(
    raw_account: tuple[MailAccount, int], tmp_path: Path, include_files: bool
) -> None:
    account, imap_port = raw_account
    assert max(len(sample.raw) for sample in account.seeded) > 16 << 20  # the seed's large message is among them
    run = read_raw(account, tmp_path, include_files)
    assert_equal_to_imap_body(account, run, raw_bytes(run, include_files, tmp_path / "staging"), imap_port)
    assert ("offers Blob/get" in run.log_text) == (account.origin == EXT_ORIGIN)


def test_in_file_mode_an_email_expunged_later_comes_as_a_deletion_record_without_a_file(
    account: MailAccount, tmp_path: Path
) -> None:
    first = read_raw(account, tmp_path, include_files=True)
    sample = account.seeded[0]
    by_message_id = {r["messageId"][0]: r["id"] for r in first.records("emails")}
    imap = account.imap()
    imap.select(seed_mail.quote_mailbox(sample.mailbox))
    [uid] = imap.uid("SEARCH", "HEADER", "Message-ID", sample.message_id)[1][0].split()
    imap.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
    imap.uid("EXPUNGE", uid)
    imap.logout()

    later = read_raw(account, tmp_path, include_files=True, state=first.final_state())
    raw = [m["record"] for m in later.of_type("RECORD") if m["record"]["stream"] == "raw_messages"]
    assert [(r["data"]["id"], r["data"].get("_ab_cdc_deleted_at") is not None, "file_reference" in r)
            for r in raw] == [(by_message_id[sample.message_id.strip("<>")], True, False)]
