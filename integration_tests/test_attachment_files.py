"""attachments in file mode against the real Cyrus: each file is the decoded content of the attachment sent, by
downloads on the plain Cyrus and by Blob/get on the Cyrus with its extensions."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin

import pytest
import requests

from source_jmap.jmap import blob_url
from unit_tests.helpers import path_name
from unit_tests.platform_files import platform_file_record

from .conftest import EXT_ORIGIN, MailAccount
from .connector import Run, run_connector, staging_environment
from .test_raw_messages import SERVERS, seeded_account


def seeded_attachments(account: MailAccount) -> dict[tuple[str, str], bytes]:
    """(Message-ID, file name) -> the decoded content of every attachment the seed sent: the seed's own
    bytes, parsed back by Python's email package, independently of Cyrus and of the connector."""
    expected: dict[tuple[str, str], bytes] = {}
    for sample in account.seeded:
        message = cast(EmailMessage, email.message_from_bytes(sample.raw, policy=email.policy.default))
        for part in message.iter_attachments():
            expected[sample.message_id.strip("<>"), str(part.get_filename())] = part.get_payload(decode=True)
    return expected


def read_files(account: MailAccount, tmp_path: Path) -> tuple[Run, list[tuple[dict[str, Any], bytes]]]:
    """A read of attachments (as files) and emails; each attachment record with its file's bytes."""
    staging = tmp_path / "staging"
    run = run_connector("read", tmp_path, account.config(exclude_mailboxes=[]), ["attachments", "emails"],
                        files=["attachments"], env=staging_environment(staging))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    delivered = []
    for line in run.lines_of("attachments"):
        record = platform_file_record(line, staging)  # the contract, and sha256 is the file's
        reference, data = record.file_reference, record.data
        assert reference is not None and reference.source_file_relative_path is not None
        path = staging / reference.source_file_relative_path
        _, month, email_id, part_id, _ = reference.source_file_relative_path.split("/")
        assert re.fullmatch(r"\d{4}-\d{2}", month)
        assert (email_id, part_id) == (path_name(data["emailId"]), path_name(data["partId"]))
        assert reference.file_size_bytes == data["size"]
        delivered.append((data, path.read_bytes()))
    return run, delivered


@SERVERS
def test_in_file_mode_each_attachment_file_holds_the_decoded_content_of_the_attachment_sent(
    request: pytest.FixtureRequest, server: str, tmp_path: Path
) -> None:
    account, _ = seeded_account(request, server)
    run, delivered = read_files(account, tmp_path)
    message_ids = {e["id"]: e["messageId"][0] for e in run.records("emails")}
    expected = seeded_attachments(account)
    assert len(expected) >= 8  # the seed's attachments: text, PDF and PNG, names in Cyrillic, German, French
    assert {(message_ids[data["emailId"]], data["name"]): content for data, content in delivered} == expected
    assert ("attachments: account" in run.log_text and "offers Blob/get" in run.log_text) == (
        account.origin == EXT_ORIGIN)


def test_in_file_mode_by_blob_get_each_attachment_file_holds_the_bytes_of_its_download(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A part's blob is its decoded content (RFC 8621 section 4.1.4): Cyrus's Blob/get gives the bytes its
    downloadUrl gives, which 0.2.0 wrote to the files."""
    account, _ = seeded_account(request, "ext")
    run, delivered = read_files(account, tmp_path)
    assert "attachments: account" in run.log_text and "offers Blob/get" in run.log_text
    session = requests.get(f"{account.origin}/jmap/", auth=(account.user, account.password), timeout=30).json()
    downloads = {}
    for data, _ in delivered:
        url = urljoin(f"{account.origin}/jmap/", blob_url(session["downloadUrl"], data["accountId"], data["blobId"],
                                                          data["type"], "part"))
        response = requests.get(url, auth=(account.user, account.password), timeout=30)
        response.raise_for_status()
        downloads[data["emailId"], data["partId"]] = response.content
    assert len(delivered) >= 8
    assert {(data["emailId"], data["partId"]): content for data, content in delivered} == downloads
