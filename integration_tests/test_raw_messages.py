"""raw_messages against the real Cyrus."""

from __future__ import annotations

import logging

import pytest

from source_jmap.jmap import MAIL, BasicCredentials, JmapClient, MethodCall
from source_jmap.streams import EmailSelection
from source_jmap.streams.raw_messages import RawMessageStream

from .conftest import MailAccount

RAW_PROPERTIES = ["id", "blobId", "size", "receivedAt", "mailboxIds"]


def test_an_email_whose_blob_the_server_no_longer_has_is_left_out_of_raw_messages_with_a_log_line(
    account: MailAccount, caplog: pytest.LogCaptureFixture
) -> None:
    client = JmapClient(account.config()["session_url"], BasicCredentials(account.user, account.password))
    account_id = client.session.primary_accounts[MAIL]
    inbox = [sample for sample in account.seeded if sample.mailbox == "INBOX"][:3]
    query = MethodCall("Email/query", {"accountId": account_id, "filter": {"inMailboxOtherThan": []}}, "q")
    get = MethodCall("Email/get", {"accountId": account_id, "ids": query.ref("/ids"),
                                   "properties": [*RAW_PROPERTIES, "messageId"]}, "g")
    by_message_id = {e["messageId"][0]: e for e in client.call([query, get], [MAIL])[get]["list"]}
    emails = [by_message_id[sample.message_id.strip("<>")] for sample in inbox]
    # Cyrus expunges lazily (expunge_mode delayed): an expunged message's blob still downloads until
    # cyr_expire runs, which other tests' server must not be made to do. A blob id of the same shape
    # that names no message is what the server answers for a blob that is gone: HTTP 404.
    emails[1] = gone = {**emails[1], "blobId": "G" + "0" * (len(emails[1]["blobId"]) - 1)}

    stream = RawMessageStream(client, lambda: [account_id], EmailSelection(client, None, [], []), 10**9)
    with caplog.at_level(logging.INFO):
        records = list(stream.new_records(account_id, emails, "2026-01-01T00:00:00Z"))
    assert [record["id"] for record in records] == [emails[0]["id"], emails[2]["id"]]
    assert all(record["raw_message"] for record in records)
    assert f"email {gone['id']} was destroyed before its download" in caplog.text
